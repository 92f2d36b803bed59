# frozen_string_literal: true

require "spec_helper"
require "net/http"
require "zlib"
require "rack/mock"

# GitRPC::SmartHTTP: git's smart HTTP as a Rack endpoint. First its answers through Rack's
# mock requests, then real git against it under a real puma, with an in-process server and
# with a remote one.
RSpec.describe "GitRPC::SmartHTTP" do
  include PumaApp
  include_context "temp storage"

  def pkt(line)
    format("%04x%s", line.bytesize + 4, line)
  end

  describe "as a Rack app" do
    let(:client) { GitRPC::Client.new(storages: { "default" => storage }) }
    # Rack::MockResponse keeps the parts a body yields: a String per chunk.
    let(:app) { GitRPC::SmartHTTP.new(client: client, reuse_buffer: false) }
    let(:mock) { Rack::MockRequest.new(app) }

    before { make_repo(storage, "g/p.git") }
    after { client.close }

    it "advertises refs for protocol v0 and v2" do
      r = mock.get("/g/p/info/refs?service=git-upload-pack")
      expect(r.status).to eq(200)
      expect(r.headers["content-type"]).to eq("application/x-git-upload-pack-advertisement")
      expect(r.headers["cache-control"]).to eq("no-cache, max-age=0, must-revalidate")
      expect(r.body).to start_with("001e# service=git-upload-pack\n0000")
      v2 = mock.get("/g/p.git/info/refs?service=git-upload-pack", "HTTP_GIT_PROTOCOL" => "version=2")
      expect(v2.body).to start_with("000eversion 2\n")
    end

    it "refills one String per response by default" do
      app = GitRPC::SmartHTTP.new(client: client)
      status, headers, body = app.call(Rack::MockRequest.env_for("/g/p.git/info/refs?service=git-upload-pack"))
      expect([status, headers["content-type"]]).to eq([200, "application/x-git-upload-pack-advertisement"])
      parts = []
      body.each { |part| parts << [part.object_id, part.dup] }
      body.close
      expect(parts.map(&:first).uniq.size).to eq(1)
      expect(parts.map(&:last).join).to start_with("001e# service=git-upload-pack\n0000")
      expect(parts.size).to be > 1
    end

    it "answers what it doesn't serve as git http-backend does" do
      expect(mock.get("/g/p.git/HEAD").status).to eq(404)
      expect(mock.get("/g/p.git/objects/info/packs").status).to eq(404)
      expect(mock.get("/g/p.git/info/refs").status).to eq(403)
      expect(mock.get("/g/missing.git/info/refs?service=git-upload-pack").body).to eq("Repository not found\n")
      expect(mock.get("/../x/info/refs?service=git-upload-pack").status).to eq(404)
      wrong_method = mock.get("/g/p.git/git-upload-pack")
      expect([wrong_method.status, wrong_method.headers["allow"]]).to eq([405, "POST"])
      wrong_type = mock.post("/g/p.git/git-upload-pack", input: "0000", "CONTENT_TYPE" => "text/plain")
      expect(wrong_type.status).to eq(415)
      expect(wrong_type.body).to include("Expected POST with Content-Type 'application/x-git-upload-pack-request'")
      # No authorize: reads are allowed, pushes refused.
      push = mock.get("/g/p.git/info/refs?service=git-receive-pack")
      expect([push.status, push.body]).to eq([403, "pushes are not allowed\n"])
      expect(push.headers["content-type"]).to start_with("text/plain")
    end

    it "asks for credentials when authorize raises Unauthorized, refuses when it says no" do
      asked = []
      app = GitRPC::SmartHTTP.new(client: client, realm: "Example", reuse_buffer: false, authorize: lambda { |request, repository, action|
        asked << [request.path_info, repository.relative_path, action]
        raise GitRPC::Unauthorized unless request.get_header("HTTP_AUTHORIZATION")

        false
      })
      mock = Rack::MockRequest.new(app)
      r = mock.get("/g/p/info/refs?service=git-receive-pack")
      expect(r.status).to eq(401)
      expect(r.headers["www-authenticate"]).to eq('Basic realm="Example"')
      r = mock.get("/g/p/info/refs?service=git-receive-pack", "HTTP_AUTHORIZATION" => "Basic eDp5")
      expect([r.status, r.body]).to eq([403, "You are not allowed to push code to this project.\n"])
      expect(asked.first).to eq(["/g/p/info/refs", "g/p.git", "git-receive-pack"])
    end

    it "inflates gzip request bodies and refuses broken ones" do
      body = pkt("command=ls-refs\n") + "0000"
      gz = StringIO.new(+"".b)
      Zlib::GzipWriter.wrap(gz) { |w| w.write(body) }
      headers = { "CONTENT_TYPE" => "application/x-git-upload-pack-request", "HTTP_GIT_PROTOCOL" => "version=2" }
      r = mock.post("/g/p.git/git-upload-pack", headers.merge(input: gz.string, "HTTP_CONTENT_ENCODING" => "gzip"))
      expect(r.status).to eq(200)
      expect(r.headers["content-type"]).to eq("application/x-git-upload-pack-result")
      expect(r.body).to include("refs/heads/main")
      bad = mock.post("/g/p.git/git-upload-pack", headers.merge(input: "not gzip", "HTTP_CONTENT_ENCODING" => "gzip"))
      expect(bad.status).to eq(400)
      odd = mock.post("/g/p.git/git-upload-pack", headers.merge(input: body, "HTTP_CONTENT_ENCODING" => "br"))
      expect(odd.status).to eq(415)
    end
  end

  # The same real-git checks for both kinds of client.
  shared_examples "a git HTTP server" do
    it "serves clones (v2 and v0), fetches, shallow and partial clones" do
      ids = make_repo(storage, "g/p.git")
      out, err, st = http_git(@dir, "clone", puma.url("g/p"), "c", env: { "GIT_TRACE_PACKET" => "1" })
      expect(st).to be_success, err
      expect(err).to include("< version 2")
      expect(git(File.join(@dir, "c"), "rev-parse", "HEAD").strip).to eq(ids[:c3])
      _, err, st = http_git(@dir, "-c", "protocol.version=0", "clone", "-q", puma.url("g/p.git"), "c0")
      expect(st).to be_success, err
      _, err, st = http_git(@dir, "clone", "-q", "--depth", "1", puma.url("g/p.git"), "shallow")
      expect(st).to be_success, err
      expect(git(File.join(@dir, "shallow"), "rev-list", "--count", "HEAD").strip).to eq("1")
      _, err, st = http_git(@dir, "clone", "-q", "--filter=blob:none", puma.url("g/p.git"), "partial")
      expect(st).to be_success, err
      expect(git(File.join(@dir, "partial"), "config", "remote.origin.promisor").strip).to eq("true")
      # Another commit on the server; a fetch with many haves (git gzips that request).
      work = File.join(@dir, "c")
      60.times { |i| git(work, "commit", "-q", "--allow-empty", "-m", "local #{i}") }
      git(ids[:path], "branch", "other", ids[:f1])
      _, err, st = http_git(work, "fetch", "-q", "origin")
      expect(st).to be_success, err
      expect(git(work, "rev-parse", "origin/other").strip).to eq(ids[:f1])
      _, err, st = http_git(@dir, "ls-remote", puma.url("g/missing"))
      expect(st).not_to be_success
      expect(err).to include("Repository not found")
    end

    it "pushes with Basic auth, refuses bad credentials and read-only users, tells the hook who pushed" do
      ids = make_repo(storage, "g/p.git")
      _, err, st = http_git(@dir, "clone", "-q", puma.url("g/p"), "c")
      expect(st).to be_success, err
      work = File.join(@dir, "c")
      git(work, "commit", "-q", "--allow-empty", "-m", "pushed over http")
      head = git(work, "rev-parse", "HEAD").strip
      # Anonymous: asked for credentials (none to give).
      _, err, st = http_git(work, "push", puma.url("g/p"), "main")
      expect(st).not_to be_success
      expect(err).to include("could not read Username")
      _, err, st = http_git(work, "push", as("alice", "wrong", puma.url("g/p")), "main")
      expect(st).not_to be_success
      expect(err).to include("Authentication failed")
      _, err, st = http_git(work, "push", as("bob", "bobpw", puma.url("g/p")), "main")
      expect(st).not_to be_success
      expect(err).to include("remote: You are not allowed to push code to this project.")
      expect(git(ids[:path], "rev-parse", "main").strip).to eq(ids[:c3])
      _, err, st = http_git(work, "push", as("alice", "alicepw", puma.url("g/p")), "main")
      expect(st).to be_success, err
      expect(git(ids[:path], "rev-parse", "main").strip).to eq(head)
      expect(File.read(seen)).to eq("GL_ID=user-alice\nGL_PROJECT_PATH=\nGL_PROTOCOL=http\n" \
                                    "GL_REPOSITORY=project-1\nGL_USERNAME=alice\n")
      # The hook's refusal reaches the pusher.
      _, err, st = http_git(work, "push", as("alice", "alicepw", puma.url("g/p")), "main:blocked")
      expect(st).not_to be_success
      expect(err).to include("remote: blocked by policy")
    end

    it "takes a hand-made gzip POST over real HTTP" do
      make_repo(storage, "g/p.git")
      gz = StringIO.new(+"".b)
      Zlib::GzipWriter.wrap(gz) { |w| w.write(pkt("command=ls-refs\n") + "0000") }
      http = Net::HTTP.new("127.0.0.1", puma.port)
      res = http.post("/git/g/p.git/git-upload-pack", gz.string,
                      "Content-Type" => "application/x-git-upload-pack-request",
                      "Content-Encoding" => "gzip", "Git-Protocol" => "version=2")
      expect(res.code).to eq("200")
      expect(res.body).to include("refs/heads/main")
      expect(res["transfer-encoding"]).to eq("chunked")
    end
  end

  # A pre-receive hook that records GL_* and refuses refs/heads/blocked.
  let(:seen) { File.join(@dir, "seen.env") }
  let(:hook) do
    File.join(@dir, "pre-receive.sh").tap do |h|
      File.write(h, <<~SH)
        #!/bin/sh
        env | grep '^GL_' | sort > #{seen}
        while read old new ref; do
          [ "$ref" = refs/heads/blocked ] && { echo "blocked by policy"; exit 1; }
        done
        exit 0
      SH
      File.chmod(0o755, h)
    end
  end

  context "under puma with the server embedded in puma" do
    let(:puma) { PumaApp::Puma.new(@dir, "GITRPC_STORAGE" => storage, "GITRPC_HOOK" => hook) }
    after { puma.stop }

    it_behaves_like "a git HTTP server"
  end

  context "under puma with a remote server" do
    let(:socket) { File.join(@dir, "gitrpc.sock") }
    let!(:server) do
      GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{socket}"], hooks: { pre_receive: hook })
    end
    let(:puma) { PumaApp::Puma.new(@dir, "GITRPC_ADDRESS" => "unix:#{socket}") }
    after do
      puma.stop
      server.stop
    end

    it_behaves_like "a git HTTP server"
  end

  # Big packs (in-process server, so puma's memory is the server's too).
  context "under puma with big packs" do
    let(:puma) { PumaApp::Puma.new(@dir, "GITRPC_STORAGE" => storage) }
    after { puma.stop }

    # `mb` MiB of incompressible blobs (1 MiB each, over a few commits) in a new bare
    # repository at `path`, built with git fast-import.
    def random_repo(path, mb)
      git(@dir, "init", "-q", "--bare", "-b", "main", path)
      IO.popen(GitHelpers::GIT_ENV, ["git", "--git-dir", path, "fast-import", "--quiet"], "w") do |fi|
        4.times do |c|
          msg = "part #{c}\n"
          fi.write("commit refs/heads/main\ncommitter b <b@example.com> #{1_700_000_000 + c} +0000\n" \
                   "data #{msg.bytesize}\n#{msg}")
          (c...mb).step(4) do |i|
            data = Random.bytes(1 << 20)
            fi.write("M 100644 inline data/f#{i}.bin\ndata #{data.bytesize}\n")
            fi.write(data)
            fi.write("\n")
          end
          fi.write("\n")
        end
      end
      raise "fast-import failed" unless $?.success?
    end

    # 200 MiB each way (the size the front-door issue names): holding a pack in memory would
    # show four times over in puma's peak RSS; about 40 s on a loaded 2-core machine.
    it "pushes and clones 200 MiB with puma's peak memory bounded" do
      make_repo(storage, "small.git")
      _, err, st = http_git(@dir, "clone", "-q", puma.url("small.git"), "warm")
      expect(st).to be_success, err
      before = puma.hwm_kib
      src = File.join(@dir, "src.git")
      random_repo(src, 200)
      git(storage, "init", "-q", "--bare", "-b", "main", "big.git")
      _, err, st = http_git(src, "push", "-q", as("alice", "alicepw", puma.url("big.git")), "main")
      expect(st).to be_success, err
      _, err, st = http_git(@dir, "clone", "-q", "--bare", puma.url("big.git"), "copy.git")
      expect(st).to be_success, err
      expect(git(File.join(@dir, "copy.git"), "rev-parse", "main")).to eq(git(src, "rev-parse", "main"))
      grew_mib = (puma.hwm_kib - before) / 1024.0
      warn "puma peak RSS grew #{grew_mib.round(1)} MiB" if ENV["GITRPC_SPEC_VERBOSE"]
      # Requests go to puma's temp file, responses through bounded channels and one reused
      # String, git's output through the server's spool (4 MiB in memory, then disk); what
      # remains is allocator and GC slack (measured: ~28 MiB; ~98 MiB when the body made a
      # String per chunk).
      expect(grew_mib).to be < 48, "puma's peak RSS grew #{grew_mib.round(1)} MiB for 200 MiB each way"
    end

    # A client that stops reading mid-download: the server's upload-pack and pack-objects
    # still finish (the rest of the pack goes to the server's spool), and the download
    # completes once the client reads again — within puma's 10 s write timeout, past which
    # puma drops a connection that doesn't drain.
    it "lets git finish while a client stalls mid-download" do
      repo = File.join(storage, "big.git")
      random_repo(repo, 32)
      head = git(repo, "rev-parse", "main").strip
      body = pkt("want #{head} side-band-64k ofs-delta\n") + "0000" + pkt("done\n")
      got = +"".b
      gits = nil
      http = Net::HTTP.new("127.0.0.1", puma.port)
      http.read_timeout = 60
      post = Net::HTTP::Post.new("/git/big.git/git-upload-pack",
                                 "Content-Type" => "application/x-git-upload-pack-request")
      post.body = body
      http.request(post) do |res|
        expect(res.code).to eq("200")
        res.read_body do |chunk|
          got << chunk
          next unless gits.nil? && got.bytesize > (1 << 20)

          # Stop reading (1 MiB of 32 read) until the server's git is gone, at most 8 s.
          deadline = Time.now + 8
          loop do
            gits = puma.descendants(/upload-pack|pack-objects/)
            break if gits.empty? || Time.now > deadline

            sleep 0.05
          end
        end
      end
      expect(gits).to eq([]), "the server's git waited for the stalled client"
      # The whole pack arrived: take it out of its side band and let git check it.
      pack = +"".b
      io = StringIO.new(got)
      expect(io.read(8)).to eq("0008NAK\n")
      while (len = io.read(4)) && len != "0000"
        data = io.read(len.to_i(16) - 4)
        pack << data[1..] if data.getbyte(0) == 1
      end
      check = File.join(@dir, "check.git")
      git(@dir, "init", "-q", "--bare", check)
      out, st = Open3.capture2e("git", "index-pack", "--stdin", chdir: check, stdin_data: pack)
      expect(st).to be_success, out
      expect(git(check, "cat-file", "-t", head).strip).to eq("commit")
    end
  end
end
