# frozen_string_literal: true

require "spec_helper"
require "open3"

# The client side of auth, TLS and several servers, against servers started in this process.
RSpec.describe "GitRPC::Client with token, TLS and several addresses" do
  include_context "temp storage"
  let(:secret) { "s3cret token" }

  before { make_repo(storage, "r.git") }

  def certificate
    cert = File.join(@dir, "cert.pem")
    key = File.join(@dir, "key.pem")
    _out, err, status = Open3.capture3(
      "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-addext", "basicConstraints=critical,CA:FALSE", "-days", "1",
      "-keyout", key, "-out", cert
    )
    raise "openssl: #{err}" unless status.success?

    { certificate_path: cert, key_path: key }
  end

  it "sends the token: without it UnauthenticatedError, with a wrong one PermissionDeniedError" do
    socket = File.join(@dir, "a.sock")
    GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{socket}"],
                         auth: { token: secret }) do |server|
      expect { GitRPC::Client.new(server.address).repository("default", "r.git").exists? }
        .to raise_error(GitRPC::UnauthenticatedError, /authentication required/)
      wrong = GitRPC::Client.new(server.address, token: "nope")
      expect { wrong.repository("default", "r.git").exists? }
        .to raise_error(GitRPC::PermissionDeniedError, /permission denied/)
      client = GitRPC::Client.new(server.address, token: secret)
      expect(client.repository("default", "r.git").ref_exists?("refs/heads/main")).to be(true)
      # In-process calls need no token.
      expect(server.client.repository("default", "r.git").exists?).to be(true)
    end
  end

  it "connects over tls:// trusting a given CA file, and refuses an untrusted certificate" do
    GitRPC::Server.start(storages: { "default" => storage }, listen: ["tls://127.0.0.1:0"],
                         tls: certificate, auth: { token: secret }) do |server|
      expect(server.address).to start_with("tls://127.0.0.1:")
      expect { GitRPC::Client.new(server.address, token: secret) }
        .to raise_error(GitRPC::UnavailableError, /certificate/)
      client = GitRPC::Client.new(server.address, token: secret,
                                                  tls_ca_file: File.join(@dir, "cert.pem"))
      expect(client.repository("default", "r.git").ref_exists?("refs/heads/main")).to be(true)
    end
  end

  it "spreads calls over several servers and retries reads past a dead one, also after fork" do
    a = File.join(@dir, "a.sock")
    b = File.join(@dir, "b.sock")
    GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{a}"]) do
      GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{b}"]) do
        client = GitRPC::Client.new("unix:#{File.join(@dir, "dead.sock")},unix:#{a},unix:#{b}")
        repo = client.repository("default", "r.git")
        10.times { expect(repo.ref_exists?("refs/heads/main")).to be(true) }
        none = GitRPC::Client.new("unix:#{File.join(@dir, "dead.sock")},unix:#{a}", retries: 0)
        expect { none.repository("default", "r.git").ref_exists?("refs/heads/main") }
          .to raise_error(GitRPC::UnavailableError)
        pid = fork do
          exit!(repo.ref_exists?("refs/heads/main") ? 0 : 1)
        end
        Process.wait(pid)
        expect($?.exitstatus).to eq(0)
      end
    end
  end
end
