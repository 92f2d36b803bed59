# frozen_string_literal: true

require "spec_helper"

# Hook blocks (pre_receive:, update:, post_receive:) for operations and pushes: they run on
# the server's Ruby thread, see the quarantined objects, and refuse with their message.
RSpec.describe "GitRPC::Server hooks" do
  include_context "temp storage"

  let(:ids) { make_repo(storage, "p.git") }
  let(:path) { ids[:path] }
  let(:user) { GitRPC::User.new(gl_id: "user-1", username: "ada", name: "Ada", email: "ada@example.com") }

  def rev(r) = git(path, "rev-parse", "--verify", "-q", r).strip
  def object?(id) = system("git", "-C", path, "cat-file", "-e", id, err: File::NULL)

  def start(**hooks, &block)
    GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{@dir}/g.sock"], **hooks, &block)
  end

  def add(repo, file, message, branch: "main")
    repo.commit_files(branch: branch, message: message, user: user,
                      actions: [{ action: :create, path: file, content: "#{file}\n" }])
  end

  it "runs pre-receive, update and post-receive for an operation; pre-receive reads the new commit" do
    ids
    events = []
    wip = nil
    pre = lambda do |ev|
      commit = ev.repository.find_commit(ev.changes.first.new_id)
      events << [:pre_receive, Thread.current.name, commit.subject, ev.user.to_h, ev.protocol]
      if commit.subject.start_with?("WIP")
        wip = commit.id
        raise GitRPC::PushRejected, "no WIP commits on #{ev.changes.first.ref}"
      end
    end
    update = ->(ev) { events << [:update, ev.change.ref, ev.repository.find_commit(ev.change.new_id)&.subject] }
    post = ->(ev) { events << [:post_receive, ev.repository.find_commit("main").subject] }
    start(pre_receive: pre, update: update, post_receive: post) do |server|
      repo = server.client(timeout: 60).repository("default", "p.git")
      u = add(repo, "a.txt", "add a")
      expect(rev("main")).to eq(u.commit_id)
      expect(events).to eq([
                             [:pre_receive, "gitrpc hooks", "add a",
                              { gl_id: "user-1", gl_username: "ada", name: "Ada", email: "ada@example.com",
                                timezone: "", gl_repository: nil }, "web"],
                             [:update, "refs/heads/main", "add a"],
                             [:post_receive, "add a"]
                           ])

      events.clear
      expect { add(repo, "b.txt", "WIP: b") }.to raise_error(GitRPC::PushRejected) { |e|
        expect(e.message).to eq("no WIP commits on refs/heads/main")
        expect(e.code).to eq(7)
        expect(e.hook_type).to eq(:pre_receive)
        expect(e).to be_a(GitRPC::PermissionDeniedError)
      }
      expect(events.map(&:first)).to eq([:pre_receive])
      expect(rev("main")).to eq(u.commit_id)
      expect(wip).to match(/\A\h{40}\z/)
      expect(object?(wip)).to be(false) # the quarantine was discarded
    end
  end

  it "turns every refusal shape into PushRejected with the hook's message" do
    git(ids[:path], "tag", "v1", ids[:c1])
    refuse = ->(_ev) { raise GitRPC::PushRejected, "frozen" }
    start(update: refuse) do |server|
      repo = server.client(timeout: 60).repository("default", "p.git")
      [
        -> { add(repo, "a.txt", "a") },
        -> { repo.create_branch("x", "main", user: user) },
        -> { repo.update_branch("main", ids[:c2], ids[:c3], user: user) },
        -> { repo.delete_tag("v1", user: user) },
        -> { repo.merge(ids[:f1], into: "main", message: "m", user: user) },
        -> { repo.revert(ids[:c3], branch: "main", message: "r", user: user) }
      ].each do |call|
        expect(&call).to raise_error(GitRPC::PushRejected) { |e| expect([e.message, e.code]).to eq(["frozen", 7]) }
      end
      expect { repo.cherry_pick(ids[:f1], branch: "main", message: "p", user: user) }
        .to raise_error(GitRPC::PushRejected) { |e| expect([e.message, e.code]).to eq(["frozen", 9]) }
      expect(rev("main")).to eq(ids[:c3])
      expect(git(path, "for-each-ref", "refs/heads/x")).to eq("")
      expect(rev("refs/tags/v1")).to eq(ids[:c1])
    end
  end

  it "refuses without internals when a block raises another error, and accepts on nil" do
    ids
    calls = 0
    pre = lambda do |_ev|
      calls += 1
      raise ArgumentError, "secret internals" if calls == 1
      next false if calls == 2

      nil
    end
    start(pre_receive: pre) do |server|
      repo = server.client(timeout: 60).repository("default", "p.git")
      expect { add(repo, "a.txt", "a") }.to raise_error(GitRPC::PushRejected) { |e|
        expect(e.message).to eq("push rejected: pre-receive hook raised ArgumentError")
      }
      expect { add(repo, "a.txt", "a") }.to raise_error(GitRPC::PushRejected, "push rejected by pre-receive hook")
      expect(add(repo, "a.txt", "a").commit_id).to eq(rev("main"))
    end
  end

  it "gives a pushed commit to the pre-receive block through the quarantine" do
    ids
    seen = []
    pre = lambda do |ev|
      c = ev.changes.first
      commit = ev.repository.find_commit(c.new_id)
      blob = ev.repository.tree_entry(c.new_id, "pushed.txt")
      seen << [ev.protocol, ev.kind, commit.subject, blob&.data]
      raise GitRPC::PushRejected, "refusing #{commit.subject}" if commit.subject.include?("bad")
    end
    start(pre_receive: pre) do |server|
      in_tmpdir do |t|
        _, err, st = git_via(server.address, t, "clone", "-q", "ssh://gitrpc/default/p.git", "c")
        raise err unless st.success?

        work = File.join(t, "c")
        File.write(File.join(work, "pushed.txt"), "pushed\n")
        git(work, "add", ".")
        git(work, "commit", "-qm", "bad commit")
        bad = git(work, "rev-parse", "HEAD").strip
        _, err, st = git_via(server.address, work, "push", "origin", "HEAD:main")
        expect(st.success?).to be(false)
        expect(err).to include("refusing bad commit")
        expect(rev("main")).to eq(ids[:c3])
        expect(object?(bad)).to be(false)

        git(work, "commit", "-q", "--amend", "-m", "good commit")
        _, err, st = git_via(server.address, work, "push", "origin", "HEAD:main")
        expect(st.success?).to be(true), err
        expect(rev("main")).to eq(git(work, "rev-parse", "HEAD").strip)
      end
    end
    expect(seen).to eq([["ssh", :pre_receive, "bad commit", "pushed\n"], ["ssh", :pre_receive, "good commit", "pushed\n"]])
  end

  it "refuses a change whose block outlives [hooks] timeout, and keeps serving" do
    ids
    slow = true
    done = Queue.new
    pre = lambda do |_ev|
      next unless slow

      sleep 3
      slow = false
      done << true
    end
    GitRPC::Server.start(storages: { "default" => storage }, hooks: { timeout: "1s" }, pre_receive: pre) do |server|
      repo = server.client(timeout: 60).repository("default", "p.git")
      expect { add(repo, "a.txt", "a") }.to raise_error(GitRPC::PushRejected, /timed out/)
      expect(rev("main")).to eq(ids[:c3])
      done.pop # the hook thread is free again
      expect(add(repo, "a.txt", "a").commit_id).to eq(rev("main"))
    end
  end

  it "works in a forked child (its own server and hook thread) and in the parent after" do
    ids
    refuse = ->(ev) { raise GitRPC::PushRejected, "parent says no" if ev.changes.first.ref.end_with?("/no") }
    start(pre_receive: refuse) do |server|
      repo = server.client(timeout: 60).repository("default", "p.git")
      add(repo, "before.txt", "before fork")
      reader, writer = IO.pipe
      pid = fork do
        reader.close
        out = begin
          child_storage = storage
          GitRPC::Server.start(storages: { "default" => child_storage },
                               pre_receive: ->(ev) { raise GitRPC::PushRejected, "child says no" if ev.changes.first.ref.end_with?("/no") }) do |s|
            r = s.client(timeout: 30).repository("default", "p.git")
            add(r, "child.txt", "from child", branch: "child")
            begin
              add(r, "no.txt", "no", branch: "no")
              "accepted /no"
            rescue GitRPC::PushRejected => e
              e.message
            end
          end
        rescue Exception => e # rubocop:disable Lint/RescueException
          "#{e.class}: #{e.message}"
        end
        writer.write(out)
        writer.close
        exit!(0)
      end
      writer.close
      Timeout.timeout(60) { Process.wait(pid) }
      expect(reader.read).to eq("child says no")
      reader.close
      expect(git(path, "log", "-1", "--format=%s", "child").strip).to eq("from child")
      GC.compact
      expect { add(repo, "no.txt", "no", branch: "no") }.to raise_error(GitRPC::PushRejected, "parent says no")
      expect(add(repo, "after.txt", "after fork").commit_id).to eq(rev("main"))
    end
  end

  it "requires callables" do
    expect { GitRPC::Server.new(storages: { "default" => storage }, update: 42) }.to raise_error(TypeError, /update/)
  end
end
