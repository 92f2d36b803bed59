# frozen_string_literal: true

require "spec_helper"

RSpec.describe GitRPC::Config do
  it "turns keywords into gitrpcd's TOML" do
    toml = described_class.toml(
      storages: { "default" => "/srv/repos", other: Pathname("/srv/other") },
      listen: ["unix:/tmp/g.sock", "tcp://127.0.0.1:0"],
      graceful_restart_timeout: 3,
      spool: { enabled: true, threshold: 1024, dir: "/tmp/sp\"ool" }
    )
    expect(toml).to include('socket_path = "/tmp/g.sock"', 'listen_addr = "127.0.0.1:0"',
                            "graceful_restart_timeout = 3", "[spool]", "threshold = 1024",
                            'dir = "/tmp/sp\\"ool"', "[[storage]]", 'name = "other"',
                            'path = "/srv/other"')
  end

  it "rejects what it cannot express" do
    expect { described_class.toml(listen: ["unix:/a", "unix:/b"]) }.to raise_error(ArgumentError, /at most one/)
    expect { described_class.toml(storages: ["x"]) }.to raise_error(ArgumentError, /Hash/)
    expect { described_class.toml("bad key": 1) }.to raise_error(ArgumentError, /bad config key/)
    expect { described_class.toml(spool: { threshold: Object.new }) }.to raise_error(ArgumentError, /unsupported/)
  end

  it "lets the server report unknown keys and bad values" do
    in_tmpdir do |dir|
      expect { GitRPC::Server.start(storages: { "default" => dir }, no_such_key: 1) }
        .to raise_error(GitRPC::InvalidArgumentError, /no_such_key/)
      expect { GitRPC::Server.start(storages: {}) }
        .to raise_error(GitRPC::InvalidArgumentError, /storage/)
    end
  end
end
