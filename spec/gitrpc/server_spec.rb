# frozen_string_literal: true

require "spec_helper"

RSpec.describe GitRPC::Server do
  include_context "temp storage"
  let(:socket) { File.join(@dir, "g.sock") }

  it "starts, serves and stops, removing its socket" do
    server = described_class.new(storages: { "default" => storage }, listen: ["unix:#{socket}"])
    expect(server.running?).to be(false)
    expect(server.address).to be_nil
    expect(server.start).to be(server)
    expect(server.running?).to be(true)
    expect(server.address).to eq("unix:#{socket}")
    expect(File.socket?(socket)).to be(true)
    expect { server.start }.to raise_error(GitRPC::Error, /already running/)
    expect(GitRPC::Client.new(server.address).repository("default", "x.git").exists?).to be(false)
    expect(server.stop).to be(true)
    expect(server.running?).to be(false)
    expect(File.exist?(socket)).to be(false)
    expect { GitRPC::Client.new("unix:#{socket}") }.to raise_error(GitRPC::UnavailableError)
  end

  it "stops when the block given to .start ends, even by an exception" do
    seen = nil
    expect do
      described_class.start(storages: { "default" => storage }, listen: ["unix:#{socket}"]) do |s|
        seen = s
        raise "boom"
      end
    end.to raise_error("boom")
    expect(seen.running?).to be(false)
    expect(File.exist?(socket)).to be(false)
  end

  it "listens on TCP and serves in-process clients, which fail once it stops" do
    server = described_class.start(storages: { "default" => storage }, listen: ["tcp://127.0.0.1:0"])
    expect(server.address).to match(%r{\Atcp://127\.0\.0\.1:\d+\z})
    client = server.client(timeout: 5)
    expect(client.in_process?).to be(true)
    expect(client.timeout).to eq(5.0)
    expect(client.repository("default", "x.git").exists?).to be(false)
    server.stop
    expect { client.repository("default", "x.git").exists? }.to raise_error(GitRPC::UnavailableError)
    expect { server.client }.to raise_error(GitRPC::UnavailableError)
  end

  it "reports an address another server listens on as AlreadyExistsError" do
    described_class.start(storages: { "default" => storage }, listen: ["unix:#{socket}", "tcp://127.0.0.1:0"]) do |first|
      expect { described_class.start(storages: { "default" => storage }, listen: ["unix:#{socket}"]) }
        .to raise_error(GitRPC::AlreadyExistsError, /another server is listening/)
      port = first.addresses.find { _1.start_with?("tcp://") }.split(":").last
      expect { described_class.start(storages: { "default" => storage }, listen: ["tcp://127.0.0.1:#{port}"]) }
        .to raise_error(GitRPC::AlreadyExistsError, /listen_addr/)
      expect(File.socket?(socket)).to be(true)
    end
  end

  it "reports a socket it cannot bind clearly" do
    File.write(File.join(@dir, "plain-file"), "")
    expect { described_class.start(storages: { "default" => storage }, listen: ["unix:#{@dir}/plain-file/s.sock"]) }
      .to raise_error(GitRPC::UnavailableError, /plain-file/)
  end

  describe "pre_receive:" do
    def push(address, *refspecs, options: [])
      in_tmpdir do |t|
        _, err, st = git_via(address, t, "clone", "-q", "ssh://gitrpc/default/p.git", "c")
        raise err unless st.success?

        work = File.join(t, "c")
        File.write(File.join(work, "new.txt"), "new\n")
        git(work, "add", ".")
        git(work, "commit", "-qm", "new")
        head = git(work, "rev-parse", "HEAD").strip
        args = options.flat_map { |o| ["-o", o] }
        _, err, st = git_via(address, work, "push", *args, "origin", *refspecs)
        [st.success?, err, head]
      end
    end

    it "calls the block on a Ruby thread to accept or reject pushes" do
      seen = []
      hook = lambda do |push|
        seen << [push, Thread.current.name]
        blocked = push.changes.find { |c| c.ref.start_with?("refs/heads/frozen") }
        raise GitRPC::PushRejected, "#{blocked.ref} is frozen" if blocked
        next false if push.changes.any? { |c| c.ref.end_with?("/no") }
        raise ArgumentError, "secret internals" if push.changes.any? { |c| c.ref.end_with?("/bug") }

        true
      end
      ids = make_repo(storage, "p.git")
      git(ids[:path], "config", "receive.advertisePushOptions", "true")
      described_class.start(storages: { "default" => storage }, listen: ["unix:#{socket}"],
                            pre_receive: hook) do |server|
        ok, err, = push(server.address, "HEAD:refs/heads/frozen-1")
        expect(ok).to be(false)
        expect(err).to include("refs/heads/frozen-1 is frozen")

        ok, err, = push(server.address, "HEAD:refs/heads/no")
        expect(ok).to be(false)
        expect(err).to include("push rejected by pre-receive hook")

        ok, err, = push(server.address, "HEAD:refs/heads/bug")
        expect(ok).to be(false)
        expect(err).to include("ArgumentError")
        expect(err).not_to include("secret internals")

        ok, err, head = push(server.address, "HEAD:refs/heads/topic", options: ["ci.skip"])
        expect(ok).to be(true), err
        expect(git(ids[:path], "rev-parse", "topic").strip).to eq(head)
        %w[frozen-1 no bug].each do |b|
          expect(git(ids[:path], "for-each-ref", "refs/heads/#{b}")).to eq("")
        end
      end
      expect(seen.size).to eq(4)
      push, thread = seen.last
      expect(thread).to eq("gitrpc hooks")
      expect(push).to be_a(GitRPC::PreReceive)
      expect([push.storage, push.relative_path, push.push_options]).to eq(["default", "p.git", ["ci.skip"]])
      change = push.changes.first
      expect(change.ref).to eq("refs/heads/topic")
      expect(change.created?).to be(true)
      expect(change.branch?).to be(true)
      expect(change.new_id).to match(/\A\h{40}\z/)
      expect(Dir.glob(File.join(storage, "+gitrpc/hooks-run/*"))).to eq([])
    end

    it "requires something callable" do
      expect { described_class.new(storages: { "default" => storage }, pre_receive: 42) }
        .to raise_error(TypeError, /call/)
    end
  end
end
