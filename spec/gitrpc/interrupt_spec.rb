# frozen_string_literal: true

require "spec_helper"

# Calls on a repository whose object store blocks git forever (see make_hanging_repo) wait
# until cancelled: what we check is that Ruby can interrupt them and that the server then
# kills git.
RSpec.describe "Interrupting calls" do
  around do |example|
    in_tmpdir do |dir|
      @dir = dir
      storage = File.join(dir, "repos")
      make_hanging_repo(storage, "hang.git")
      GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{dir}/s.sock"]) do |server|
        @server = server
        example.run
      end
    end
  end

  let(:remote) { GitRPC::Client.new(@server.address, timeout: nil) }
  let(:in_process) { @server.client(timeout: nil) }

  def hang(client, tag)
    client.repository("default", "hang.git").commit_is_ancestor?(tag * 40, "b" * 40)
  end

  def git_running?(tag)
    GitHelpers.git_children.any? { |c| c.include?(tag * 40) }
  end

  def wait_for_git(tag)
    Timeout.timeout(10) { sleep 0.01 until git_running?(tag) }
  end

  def expect_git_killed(tag)
    deadline = Time.now + 5
    sleep 0.01 while git_running?(tag) && Time.now < deadline
    expect(git_running?(tag)).to be(false), "git for #{tag} still running"
  end

  def elapsed
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
  ensure
    return Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
  end

  [[:remote, "1"], [:in_process, "2"]].each do |kind, tag|
    context "with a #{kind} client" do
      let(:client) { send(kind) }

      it "releases the GVL while waiting" do
        ticks = 0
        ticker = Thread.new { loop { ticks += 1; sleep 0.005 } }
        expect { Timeout.timeout(0.5) { hang(client, tag) } }.to raise_error(Timeout::Error)
        ticker.kill
        expect(ticks).to be > 20
        expect_git_killed(tag)
      end

      it "is interrupted by Timeout.timeout, and git is killed" do
        took = elapsed { expect { Timeout.timeout(0.3) { hang(client, tag) } }.to raise_error(Timeout::Error) }
        expect(took).to be < 2
        expect_git_killed(tag)
      end

      it "is interrupted by Thread#raise" do
        t = Thread.new { hang(client, tag) }
        t.report_on_exception = false
        wait_for_git(tag)
        took = elapsed do
          t.raise(IOError, "stop")
          expect { t.join }.to raise_error(IOError, "stop")
        end
        expect(took).to be < 2
        expect_git_killed(tag)
      end

      it "is interrupted by Thread#kill" do
        t = Thread.new { hang(client, tag) }
        wait_for_git(tag)
        took = elapsed do
          t.kill
          t.join
        end
        expect(took).to be < 2
        expect(t.alive?).to be(false)
        expect_git_killed(tag)
      end

      it "interrupts a streaming call, cancelling it on the server" do
        commits = client.repository("default", "hang.git").list_commits([tag * 40])
        expect { Timeout.timeout(0.3) { commits.first } }.to raise_error(Timeout::Error)
        expect_git_killed(tag)
      end

      it "ends a call at its deadline with DeadlineExceededError" do
        client.timeout = 0.3
        expect { hang(client, tag) }.to raise_error(GitRPC::DeadlineExceededError)
        expect_git_killed(tag)
      end
    end
  end

  it "lets Ctrl-C (SIGINT) end a process blocked in a call" do
    code = <<~RUBY
      require "gitrpc"
      client = GitRPC::Client.new(#{@server.address.dump})
      $stdout.puts "calling"; $stdout.flush
      begin
        client.repository("default", "hang.git").commit_is_ancestor?("3" * 40, "b" * 40)
      rescue Interrupt
        $stdout.puts "interrupted"; $stdout.flush
        exit 42
      end
    RUBY
    IO.popen([RbConfig.ruby, "-I", File.join(GitHelpers::ROOT, "lib"), "-e", code]) do |io|
      expect(io.gets).to eq("calling\n")
      Timeout.timeout(10) do
        sleep 0.01 until Dir.glob("/proc/[0-9]*/cmdline").any? do |f|
          cmd = File.read(f) rescue ""
          cmd.include?("3" * 40) && cmd.include?(@dir)
        end
      end
      took = elapsed do
        Process.kill(:INT, io.pid)
        expect(io.gets).to eq("interrupted\n")
      end
      expect(took).to be < 2
    end
    expect($?.exitstatus).to eq(42)
    # The server (in this process) sees the client go and kills git.
    expect_git_killed("3")
  end
end
