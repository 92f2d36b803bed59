# frozen_string_literal: true

require "spec_helper"

# Puma's preload_app! forks workers from a parent that has already used gitrpc. The tokio
# runtime, the connections and any in-process server belong to the parent: a child must
# build its own runtime (lazily), reconnect remote clients, and be told plainly that the
# parent's in-process server is not its own, never hang on the parent's dead threads.
RSpec.describe "Forking" do
  around do |example|
    in_tmpdir do |dir|
      @storage = File.join(dir, "repos")
      @ids = make_repo(@storage, "p.git")
      GitRPC::Server.start(storages: { "default" => @storage }, listen: ["unix:#{dir}/s.sock"]) do |server|
        @server = server
        example.run
      end
    end
  end

  # Run the block in a forked child; failures there come back as a failed expectation here.
  # A hang in the child (a reused runtime) is a failure after `timeout` seconds.
  def in_child(timeout: 30)
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      begin
        yield
        writer.write("ok")
      rescue Exception => e # rubocop:disable Lint/RescueException
        writer.write("#{e.class}: #{e.message}\n#{e.backtrace.first(5).join("\n")}")
      ensure
        writer.close
        exit!(0)
      end
    end
    writer.close
    status = nil
    Timeout.timeout(timeout) { _, status = Process.wait2(pid) }
    expect(reader.read).to eq("ok")
    expect(status.exitstatus).to eq(0)
  rescue Timeout::Error
    Process.kill(:KILL, pid)
    Process.wait(pid)
    raise "the forked child hung"
  ensure
    reader&.close
  end

  def check(cond, what)
    raise "failed in child: #{what}" unless cond
  end

  it "gives the child a working runtime, remote clients that reconnect, and no parent server" do
    remote = GitRPC::Client.new(@server.address, timeout: 10)
    in_process = @server.client(timeout: 10)
    repo = remote.repository("default", "p.git")
    expect(repo.branches.map(&:name)).to eq(%w[refs/heads/feature refs/heads/main])
    expect(in_process.repository("default", "p.git").default_branch).to eq("refs/heads/main")
    # Exercise the stream path too, so the parent has live connections and tasks.
    expect(repo.list_commits(["main"]).first.id).to eq(@ids[:c3])
    GC.compact

    ids = @ids
    storage = @storage
    server = @server
    in_child do
      # The parent's remote client reconnects in the child.
      check(repo.find_commit("main").id == ids[:c3], "old remote client")
      check(repo.list_commits(["main"]).map(&:id) == [ids[:c3], ids[:c2], ids[:c1]], "old remote stream")
      # A new remote client works.
      fresh = GitRPC::Client.new(server.address, timeout: 10)
      check(fresh.repository("default", "p.git").exists?, "new remote client")
      # The parent's in-process server is not ours: unavailable, at once.
      t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      begin
        in_process.repository("default", "p.git").exists?
        raise "in-process call to the parent's server succeeded in the child"
      rescue GitRPC::UnavailableError => e
        check(e.message.include?("fork"), "unavailable message mentions fork: #{e.message}")
      end
      check(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t < 2, "unavailable answer was quick")
      check(server.running? == false, "server not running in child")
      check(server.stop == false, "child cannot stop the parent's server")
      # The child can run its own in-process server.
      own = GitRPC::Client.new(storages: { "default" => storage }, timeout: 10)
      check(own.repository("default", "p.git").commit_is_ancestor?(ids[:c1], ids[:c3]), "own in-process server")
      own.close
      GC.compact
      check(repo.ref_exists?("refs/heads/main"), "after compaction in child")
    end

    # The parent is untouched: same clients, same server, socket still there.
    expect(@server.running?).to be(true)
    expect(File.socket?(@server.address.delete_prefix("unix:"))).to be(true)
    expect(repo.find_commit("main~2").id).to eq(@ids[:c1])
    expect(in_process.repository("default", "p.git").exists?).to be(true)
  end

  it "works when the parent forks before its first call, and in grandchildren" do
    remote = GitRPC::Client.new(@server.address, timeout: 10)
    repo = remote.repository("default", "p.git")
    ids = @ids
    in_child do
      check(repo.default_branch == "refs/heads/main", "child")
      pid = fork do
        exit!(repo.find_commit("feature").id == ids[:f1] ? 0 : 1)
      end
      _, status = Process.wait2(pid)
      check(status.exitstatus == 0, "grandchild")
    end
    expect(repo.ref_exists?("refs/heads/feature")).to be(true)
  end

  it "keeps a routed client's remote storages in the child and fails only its in-process ones" do
    local_dir = File.join(File.dirname(@storage), "local")
    make_repo(local_dir, "l.git")
    GitRPC::Server.start(storages: { "local" => local_dir }) do |local|
      client = GitRPC::Client.new(servers: { "default" => @server.address, "local" => local }, timeout: 10)
      expect(client.repository("local", "l.git").exists?).to be(true)
      expect(client.repository("default", "p.git").exists?).to be(true)
      ids = @ids
      in_child do
        check(client.repository("default", "p.git").find_commit("main").id == ids[:c3], "remote storage")
        begin
          client.repository("local", "l.git").exists?
          raise "the parent's in-process storage answered in the child"
        rescue GitRPC::UnavailableError => e
          check(e.message.include?("fork"), "unavailable message mentions fork: #{e.message}")
        end
        check(client.repository("default", "p.git").exists?, "remote storage after the in-process failure")
      end
      # The parent's routes are untouched.
      expect(client.repository("local", "l.git").exists?).to be(true)
      expect(client.repository("default", "p.git").find_commit("main").id).to eq(@ids[:c3])
    end
  end

  it "keeps several forked workers independent, as Puma does" do
    remote = GitRPC::Client.new(@server.address, timeout: 10)
    repo = remote.repository("default", "p.git")
    expect(repo.exists?).to be(true)
    ids = @ids
    pids = 4.times.map do
      fork do
        ok = 20.times.all? { repo.find_commit("main").id == ids[:c3] && repo.list_commits(["main"]).count == 3 }
        exit!(ok ? 0 : 1)
      end
    end
    statuses = Timeout.timeout(60) { pids.map { |pid| Process.wait2(pid).last.exitstatus } }
    expect(statuses).to eq([0, 0, 0, 0])
    expect(repo.branches.size).to eq(2)
  end
end
