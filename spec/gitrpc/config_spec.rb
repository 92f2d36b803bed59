# frozen_string_literal: true

require "spec_helper"
require "pathname"

RSpec.describe GitRPC::Config do
  include_context "temp storage"

  it "turns keywords into the config Hash, frozen" do
    config = described_class.build(
      storages: { "default" => "/srv/repos", other: Pathname("/srv/other") },
      listen: ["unix:/tmp/g.sock", "tcp://127.0.0.1:0", "tls://127.0.0.1:0"],
      graceful_restart_timeout: 3,
      spool: { enabled: true, threshold: 1024 }
    )
    expect(config).to eq(
      "socket_path" => "/tmp/g.sock", "listen_addr" => "127.0.0.1:0", "tls_listen_addr" => "127.0.0.1:0",
      "graceful_restart_timeout" => 3, "spool" => { enabled: true, threshold: 1024 },
      "storage" => [{ "name" => "default", "path" => "/srv/repos" }, { "name" => "other", "path" => "/srv/other" }]
    )
    expect(config).to be_frozen
    expect(config["spool"]).to be_frozen
    expect(config["storage"].first).to be_frozen
  end

  it "rejects what the keywords cannot express" do
    expect { described_class.build(listen: ["unix:/a", "unix:/b"]) }.to raise_error(ArgumentError, /at most one/)
    expect { described_class.build(storages: ["x"]) }.to raise_error(ArgumentError, /Hash/)
    expect { described_class.build(storages: { "a" => "/a" }, storage: [{ name: "b", path: "/b" }]) }
      .to raise_error(ArgumentError, /not both/)
  end

  # Every mistake is an ArgumentError raised by Server.new, naming the key, and starts nothing.
  it "raises ArgumentError naming an unknown key or a bad value, at any depth" do
    base = { storages: { "default" => storage } }
    {
      { no_such_key: 1 } => /unknown field `no_such_key`/,
      { spool: { bogus: 1 } } => /spool.bogus: unknown field `bogus`/,
      { concurrency: [{ rpc: "/gitaly.RefService/RefExists", max_concurrency: 1, nope: 2 }] } =>
        /concurrency\[0\].nope: unknown field `nope`/,
      { graceful_restart_timeout: "soon" } => /graceful_restart_timeout: invalid duration "soon"/,
      { spool: { threshold: -1 } } => /spool.threshold: invalid value/,
      { spool: { threshold: Object.new } } => /spool.threshold: unsupported value #<Object/,
      { spool: { 1 => 2 } } => /spool: keys must be Strings or Symbols/,
      { pack_objects_limiting: { max_concurrency: 1, max_queue_wait: "soon" } } =>
        /pack_objects_limiting.max_queue_wait: invalid duration "soon"/,
      { adaptive_limiting: { cpu_threshold: Float::NAN } } => /adaptive_limiting.cpu_threshold: NaN is not finite/
    }.each do |bad, message|
      expect { GitRPC::Server.new(**base, **bad) }.to raise_error(ArgumentError, message)
    end
    expect { GitRPC::Server.new(storages: {}) }.to raise_error(ArgumentError, /no \[\[storage\]\]/)
    expect { GitRPC::Client.new(storages: { "default" => storage }, spool: { bogus: 1 }) }
      .to raise_error(ArgumentError, /bogus/)
    expect(Dir.children(storage)).to eq([])
  end

  let(:ancestor) { "/gitaly.CommitService/CommitIsAncestor" }

  # Server keywords using every kind of value a config takes.
  def every_kind(socket)
    {
      storages: { default: Pathname(storage) },                  # Symbol key, Pathname value
      listen: ["unix:#{socket}"],
      socket_mode: "0660",                                        # String
      graceful_restart_timeout: 1,                                # Integer
      prometheus_listen_addr: nil,                                # nil: not given
      auth: { transitioning: false },                             # table, false
      spool: { enabled: true, threshold: 4096, dir: Pathname(File.join(@dir, "spool")) },
      catfile: { "max_idle" => 4, idle_ttl: 30 },                 # String and Symbol keys
      logging: { level: :warn },                                  # Symbol value
      adaptive_limiting: { cpu_threshold: 95.5, backoff: 0.5, interval: "10s" }, # Floats
      concurrency: [{ rpc: ancestor, max_concurrency: 1, max_queue_wait: "100ms" }] # Array of tables
    }
  end

  it "starts a working server from a config with every kind of value" do
    ids = make_repo(storage, "p.git")
    socket = File.join(@dir, "s.sock")
    GitRPC::Server.start(**every_kind(socket)) do |server|
      expect(server.config["concurrency"]).to eq([{ rpc: ancestor, max_concurrency: 1, max_queue_wait: "100ms" }])
      expect(File.stat(socket).mode & 0o777).to eq(0o660)
      repo = GitRPC::Client.new(server.address, timeout: 10).repository("default", "p.git")
      expect(repo.find_commit("main").subject).to eq("c3: docs")
      expect(repo.commit_is_ancestor?(ids[:c1], ids[:c3])).to be(true)
    end
  end

  it "puts [[concurrency]] given as an Array of Hashes in force" do
    make_hanging_repo(storage, "hang.git")
    GitRPC::Server.start(**every_kind(File.join(@dir, "s.sock"))) do |server|
      # With one call of the RPC hanging, the next one on that repository (limits are per
      # repository) waits 100 ms in the queue and is refused.
      hang = GitRPC::Client.new(server.address, timeout: 10, retries: 0).repository("default", "hang.git")
      hanging = Thread.new { hang.commit_is_ancestor?("4" * 40, "b" * 40) }
      hanging.report_on_exception = false
      begin
        Timeout.timeout(10) { sleep 0.01 until GitHelpers.git_children.any? { |c| c.include?("4" * 40) } }
        expect { hang.commit_is_ancestor?("5" * 40, "b" * 40) }
          .to raise_error(GitRPC::ResourceExhaustedError, /maximum time in concurrency queue reached/)
      ensure
        hanging.kill.join
      end
    end
  end
end
