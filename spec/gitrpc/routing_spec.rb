# frozen_string_literal: true

require "spec_helper"

# Storage routing: `GitRPC::Client.new(servers: {...})` sends each call to its repository's
# storage's server, over a socket or in this process.
RSpec.describe "GitRPC::Client with servers:" do
  include_context "temp storage"

  let(:remote_dir) { File.join(@dir, "remote").tap { |d| FileUtils.mkdir_p(d) } }
  let(:local_dir) { File.join(@dir, "local").tap { |d| FileUtils.mkdir_p(d) } }

  it "routes each storage's calls to its server, remote or in-process" do
    socket = File.join(@dir, "r.sock")
    GitRPC::Server.start(storages: { "shard-2" => remote_dir }, listen: ["unix:#{socket}"]) do |remote|
      GitRPC::Server.start(storages: { "local" => local_dir }) do |local|
        client = GitRPC::Client.new(servers: { "shard-2" => "unix:#{socket}", "local" => local }, timeout: 10)
        expect(client.routed?).to be(true)
        expect(client.in_process?).to be(false)

        make_repo(remote_dir, "a.git")
        make_repo(local_dir, "b.git")
        expect(client.repository("shard-2", "a.git").exists?).to be(true)
        expect(client.repository("local", "b.git").exists?).to be(true)
        expect(client.repository("local", "a.git").exists?).to be(false)
        expect(client.repository("local", "b.git").default_branch).to eq("refs/heads/main")
        client.repository("shard-2", "new.git").create(default_branch: "main")
        expect(File.exist?(File.join(remote_dir, "new.git", "HEAD"))).to be(true)
        expect(client.repository("shard-2", "a.git").list_commits(["main"]).count).to eq(3)

        expect { client.repository("nope", "a.git").exists? }
          .to raise_error(GitRPC::InvalidArgumentError, /storage not found: "nope"\z/)
        expect(remote.running?).to be(true)
      end
    end
  end

  it "fails only the storage whose server is down" do
    GitRPC::Server.start(storages: { "local" => local_dir }) do |local|
      client = GitRPC::Client.new(servers: { "local" => local,
                                             "gone" => { address: "unix:#{@dir}/none.sock", token: "t" } })
      make_repo(local_dir, "b.git")
      expect { client.repository("gone", "x.git").exists? }.to raise_error(GitRPC::UnavailableError)
      expect(client.repository("local", "b.git").exists?).to be(true)
    end
  end

  it "refuses a malformed servers: Hash with ArgumentError" do
    expect { GitRPC::Client.new(servers: {}) }.to raise_error(ArgumentError, /non-empty Hash/)
    expect { GitRPC::Client.new(servers: { "a" => 1 }) }.to raise_error(ArgumentError, /a: expected an address/)
    expect { GitRPC::Client.new(servers: { "a" => { adress: "unix:/x" } }) }
      .to raise_error(ArgumentError, /a: unknown key adress/)
    expect { GitRPC::Client.new(servers: { "a" => "ftp://x" }) }.to raise_error(ArgumentError, /invalid address/)
    server = GitRPC::Server.new(storages: { "local" => local_dir })
    expect { GitRPC::Client.new(servers: { "a" => server }) }.to raise_error(ArgumentError, /not started/)
    expect { GitRPC::Client.new(servers: { "a" => "unix:/x" }, storages: { "b" => local_dir }) }
      .to raise_error(ArgumentError, /not both/)
  end
end
