# frozen_string_literal: true

require "spec_helper"

# Every VALUE the extension holds (a server's config and hook blocks, a client's
# address and server, a stream's client, a smart-HTTP call's client) must be marked and, if movable, updated when
# GC.compact moves it. Each one here is reachable *only* through the Rust object, on a
# fragmented heap, so compaction moves it; then every held object is read back and used.
# It runs in a child process: a dangling reference is a crash, and a crash must be a failed
# example, not a lost run.
RSpec.describe "GC compaction" do
  it "keeps every held object valid through GC.compact and verify_compaction_references" do
    in_tmpdir do |dir|
      storage = File.join(dir, "repos")
      ids = make_repo(storage, "p.git")
      code = <<~RUBY
        require "gitrpc"
        require #{File.join(GitHelpers::ROOT, "spec/support/git_helpers").dump}
        include GitHelpers
        ENV["GITRPC_SSH"] = #{gitrpc_ssh.dump}
        storage = #{storage.dump}
        address = "unix:#{dir}/s.sock"
        def check(cond, what) = cond || abort("FAILED: \#{what}")

        # Fragment the heap: many live objects with holes between them.
        def fragment = Array.new(100_000) { |i| "filler \#{i}" * (i % 3) }.select.with_index { |_, i| i.odd? }
        keep = [fragment]

        seen = []
        hook = ->(push) { seen << push.changes.map(&:ref); push.changes.none? { |c| c.ref.end_with?("/no") } }
        hook_id = hook.object_id
        updates = []
        update = ->(ev) { updates << [ev.kind, ev.change.ref, ev.repository.find_commit(ev.change.new_id).subject, ev.user.gl_id] }
        update_id = update.object_id
        posted = []
        post = ->(ev) { posted << ev.changes.map(&:ref) }
        config = GitRPC::Config.build(storages: { "default" => storage }, listen: [address])
        native = GitRPC::Native::Server.new(Marshal.load(Marshal.dump(config)), hook, update, post)
        hook = update = post = nil
        hooks = Thread.new { native.run_hooks }
        keep << fragment

        # Streams whose clients (and the in-process client's server link) only Rust holds.
        in_process_stream = native.client(10.0).list_commits("default", "p.git", ["main"])
        remote_stream = GitRPC::Native::Client.connect(address.dup, 10.0, nil, nil, 2).list_commits("default", "p.git", ["main"])
        remote = GitRPC::Native::Client.connect(+address, 10.0, +"", nil, 0)
        # A FindCommits stream (repo.commits) and its client, held only by Rust.
        history_stream = native.client(10.0).find_commits("default", "p.git", { revision: +"main", limit: 10 })
        # A smart-HTTP call whose client only Rust holds.
        http_call = GitRPC::Native::HTTPCall.start(GitRPC::Native::Client.connect(address.dup, 10.0, nil, nil, 0),
                                                   "info_refs", "git-upload-pack", "default", "p.git", nil, false,
                                                   [nil, nil, nil, nil])
        keep << fragment

        3.times do
          keep.shift
          keep << fragment
          GC.compact
        end
        if RUBY_VERSION >= "3.2"
          GC.verify_compaction_references(expand_heap: true, toward: :empty)
        else
          GC.verify_compaction_references(double_heap: true, toward: :empty)
        end
        keep.clear
        GC.start

        check(native.config == config && !native.config.equal?(config), "server config Hash")
        pre, upd, post = native.hooks
        check(pre.object_id == hook_id && pre.lambda?, "pre-receive block")
        check(upd.object_id == update_id && upd.lambda?, "update block")
        check(post.lambda? && post.arity == 1, "post-receive block")
        check(remote.address == address, "remote client address")
        inproc = in_process_stream.client
        check(inproc.server.equal?(native), "in-process client's server")
        check(inproc.address.nil?, "in-process client has no address")
        check(remote_stream.client.address == address, "stream's remote client")
        [in_process_stream, remote_stream].each do |stream|
          first = stream.next_batch
          check(first.map(&:id) == [#{ids[:c3].dump}, #{ids[:c2].dump}, #{ids[:c1].dump}], "stream contents: \#{first.inspect}")
          check(stream.next_batch.nil?, "stream end")
        end
        check(history_stream.client.server.equal?(native), "find_commits stream's client")
        history = history_stream.next_batch
        check(history.map(&:id) == [#{ids[:c3].dump}, #{ids[:c2].dump}, #{ids[:c1].dump}], "find_commits stream: \#{history.inspect}")
        check(history_stream.next_batch.nil?, "find_commits stream end")
        check(inproc.find_commit("default", "p.git", "main~1").id == #{ids[:c2].dump}, "in-process call")
        check(remote.ref_exists("default", "p.git", "refs/heads/feature"), "remote call")
        check(http_call.failure.nil?, "smart-HTTP call started")
        buf = String.new(encoding: Encoding::BINARY)
        advertised = +"".b
        advertised << buf while http_call.read(buf)
        check(advertised.start_with?("001e# service=git-upload-pack\n0000") && advertised.include?("refs/heads/main"),
              "smart-HTTP call's answer: \#{advertised[0, 80].inspect}")
        http_call.close

        # The held block decides real pushes.
        in_tmpdir do |t|
          _, err, st = git_via(address, t, "clone", "-q", "ssh://gitrpc/default/p.git", "c")
          check(st.success?, "clone: \#{err}")
          work = File.join(t, "c")
          _, _, ok = git_via(address, work, "push", "origin", "HEAD:refs/heads/yes")
          _, err, no = git_via(address, work, "push", "origin", "HEAD:refs/heads/no")
          check(ok.success? && !no.success? && err.include?("rejected"), "push verdicts: \#{err}")
        end
        check(seen == [["refs/heads/yes"], ["refs/heads/no"]], "hook saw \#{seen.inspect}")

        # An operation runs all three held blocks; update reads the quarantined commit.
        user = ["user-9", "ada", "Ada", "ada@example.com", ""]
        done = inproc.commit_files(["default", "p.git", user, "main", "compacted"],
                                   [[:create, "gc.txt", nil, "gc\n", false]], {})
        GC.compact
        check(done.commit_id == inproc.find_commit("default", "p.git", "main").id, "operation's branch update")
        check(updates.last == [:update, "refs/heads/main", "compacted", "user-9"], "update saw \#{updates.inspect}")
        check(posted.last == ["refs/heads/main"], "post-receive saw \#{posted.inspect}")

        GC.compact
        check(native.stop == true, "stop")
        hooks.join
        puts "ALL OK"
      RUBY
      out, status = ruby_child(code)
      expect(out).to end_with("ALL OK\n")
      expect(status).to be_success
    end
  end
end
