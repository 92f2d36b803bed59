# frozen_string_literal: true

require "spec_helper"
require "json"
require "net/http"
require "socket"

# The pack-objects cache behind GitRPC::SmartHTTP under a real puma: a storm of identical
# `git clone`s over HTTP costs one `pack-objects`, with the server embedded in puma (no
# listener: the cache's hook reaches it through its private channel) and with a remote one.
# Counted from the server's own metrics (`prometheus_listen_addr`), as the Rust storm tests
# (rust/gitrpcd/tests/packcache/storms.rs) count through gitrpc-ssh and the sidechannel.
module PackCacheStorm
  # Identical clones in the storm.
  N = 8
  # `min_occurrences = 0`: every pack is kept, so a clone that comes after the generation
  # ended hits the entry instead of making another (the count stays exact however the
  # clones are spread). The fast path (`direct`) is on, as by default.
  CACHE = { enabled: true, min_occurrences: 0 }.freeze
end

RSpec.describe "GitRPC::SmartHTTP with the pack-objects cache" do
  include PumaApp
  include_context "temp storage"

  # A loopback port free a moment ago (the server binds it; a start that loses the race is
  # retried with another).
  def free_port
    s = TCPServer.new("127.0.0.1", 0)
    s.addr[1]
  ensure
    s&.close
  end

  def with_free_port(attempts: 5)
    attempts.times do |i|
      return yield "127.0.0.1:#{free_port}"
    rescue GitRPC::AlreadyExistsError, RuntimeError => e
      raise if i == attempts - 1 || !e.message.match?(/in use/i)
    end
  end

  # One series of the server's /metrics (0 when absent).
  def sample(text, series)
    line = text.each_line.find { |l| l.start_with?("#{series} ") }
    line ? Float(line.split.last) : 0.0
  end

  # The counts the storm is judged by.
  def counts
    text = Net::HTTP.get(URI("http://#{monitor}/metrics"))
    lookups = %w[miss hit coalesced hit_direct].to_h do |r|
      [r.to_sym, sample(text, %(gitrpc_pack_objects_cache_lookups_total{result="#{r}"}))]
    end
    served = %w[cache generated direct].sum do |s|
      sample(text, %(gitrpc_pack_objects_served_bytes_total{source="#{s}"}))
    end
    lookups.merge(pack_objects: sample(text, 'gitrpc_git_commands_started_total{subcommand="pack-objects"}'),
                  generated: sample(text, "gitrpc_pack_objects_generated_bytes_total"),
                  served: served)
  end

  # A bare repository at storage/rel worth caching: make_repo's (main and feature) with two
  # more commits on main adding 1 MiB of incompressible data each and an annotated tag,
  # packed with a bitmap like a served repository. Returns its path.
  def storm_repo(rel)
    ids = make_repo(storage, rel)
    path = ids[:path]
    work = File.join(@dir, "storm-work")
    git(@dir, "clone", "-q", path, work)
    2.times do |i|
      File.binwrite(File.join(work, "blob#{i}.bin"), Random.bytes(1 << 20))
      git(work, "add", ".")
      git(work, "commit", "-qm", "blob #{i}")
    end
    git(work, "tag", "-a", "-m", "release", "v1", ids[:c2])
    git(work, "push", "-q", "origin", "main", "v1")
    git(path, "repack", "-adq", "--write-bitmap-index")
    path
  end

  def refs(repo)
    git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
  end

  # `n` `git clone --bare` (protocol v2) of `url` into c0, c1, ..., all started at once;
  # their exit statuses and stderr.
  def storm(url, n)
    env = GitHelpers::GIT_ENV.merge("GIT_TERMINAL_PROMPT" => "0", "GIT_ASKPASS" => "/bin/false")
    pids = Array.new(n) do |k|
      err = File.join(@dir, "clone#{k}.err")
      [Process.spawn(env, "git", "-c", "protocol.version=2", "clone", "-q", "--bare", url, "c#{k}",
                     chdir: @dir, in: File::NULL, out: File::NULL, err: err), err]
    end
    pids.map { |pid, err| [Process.wait2(pid).last, File.read(err)] }
  end

  shared_examples "one pack-objects per storm" do
    it "serves #{PackCacheStorm::N} identical concurrent clones with one pack-objects, every clone right" do
      n = PackCacheStorm::N
      path = storm_repo("g/p.git")
      want = refs(path)
      head = git(path, "rev-parse", "main")
      before = counts
      storm(puma.url("g/p.git"), n).each_with_index do |(status, err), k|
        expect(status).to be_success, "clone #{k}: #{err}\n#{File.read(puma.log)}"
      end
      n.times do |k|
        clone = File.join(@dir, "c#{k}")
        expect(refs(clone)).to eq(want), "clone #{k}'s refs"
        expect(git(clone, "rev-parse", "HEAD")).to eq(head), "clone #{k}'s HEAD"
        git(clone, "fsck", "--no-progress", "--strict")
      end
      after = counts
      d = after.to_h { |k, v| [k, v - before[k]] }
      expect(d[:pack_objects]).to eq(1), "pack-objects runs: #{d}"
      expect(d[:miss]).to eq(1), "misses: #{d}"
      expect(d[:hit] + d[:coalesced] + d[:hit_direct]).to eq(n - 1), "hits and joined readers: #{d}"
      # The fast path: one upload-pack relayed the generated pack, the server sent the others.
      expect(d[:hit] + d[:coalesced] + d[:miss]).to eq(1), "upload-packs that relayed the pack: #{d}"
      expect(d[:hit_direct]).to eq(n - 1), "served by the fast path: #{d}"
      expect(d[:served]).to eq(d[:generated] * n), "generated once, served #{n} times: #{d}"
    end
  end

  context "with the server embedded in puma" do
    attr_reader :monitor

    let!(:puma) do
      with_free_port do |addr|
        @monitor = addr
        config = { pack_objects_cache: PackCacheStorm::CACHE, prometheus_listen_addr: addr }
        PumaApp::Puma.new(@dir, "GITRPC_STORAGE" => storage, "GITRPC_CONFIG" => JSON.generate(config))
      end
    end
    after { puma.stop }

    it_behaves_like "one pack-objects per storm"
  end

  context "with a remote server" do
    attr_reader :monitor

    let(:socket) { File.join(@dir, "gitrpc.sock") }
    let!(:server) do
      with_free_port do |addr|
        @monitor = addr
        GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{socket}"],
                             pack_objects_cache: PackCacheStorm::CACHE, prometheus_listen_addr: addr)
      end
    end
    let(:puma) { PumaApp::Puma.new(@dir, "GITRPC_ADDRESS" => "unix:#{socket}") }
    after do
      puma.stop
      server.stop
    end

    it_behaves_like "one pack-objects per storm"
  end
end
