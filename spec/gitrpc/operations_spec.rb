# frozen_string_literal: true

require "spec_helper"

# The write API (Repository#commit_files, branches, tags, merges...) against git's own view
# of the repository afterwards.
RSpec.describe "GitRPC::Repository operations" do
  include_context "temp storage"

  let(:ids) { make_repo(storage, "p.git") }
  let(:path) { ids[:path] }
  let(:user) do
    GitRPC::User.new(gl_id: "user-1", gl_username: "ada", name: "Ada Lovelace", email: "ada@example.com",
                     timezone: "Asia/Kolkata")
  end

  around do |example|
    GitRPC::Server.start(storages: { "default" => storage }) do |server|
      @server = server
      example.run
    end
  end

  let(:repo) { @server.client(timeout: 60).repository("default", "p.git") }

  def rev(r) = git(path, "rev-parse", "--verify", "-q", r).strip
  def show(r, file) = git(path, "show", "#{r}:#{file}")
  def exists?(r) = system("git", "-C", path, "rev-parse", "--verify", "-q", r, out: File::NULL, err: File::NULL)

  describe "#commit_files" do
    it "commits every kind of action, as git sees it" do
      ids # the repository
      u = repo.commit_files(branch: "main", message: "edit files\n\nwith a body", user: user, timestamp: 1_700_000_000,
                            actions: [
                              { action: :create, path: "new/a.txt", content: "a\n" },
                              { action: :create, path: "bin/run", content: ["#!/bin/sh\n"].pack("m0"),
                                base64: true, executable: true },
                              { action: :update, path: "README.md", content: "hello again\n" },
                              { action: :move, path: "lib.rb", previous_path: "src/lib.rb" },
                              { action: :delete, path: "docs/a b.txt" },
                              { action: :create_dir, path: "empty" }
                            ])
      expect(u).to be_a(GitRPC::BranchUpdate)
      expect(u.commit_id).to eq(rev("main"))
      expect([u.repo_created?, u.branch_created?]).to eq([false, false])
      expect(git(path, "rev-parse", "main^").strip).to eq(ids[:c3])
      expect(show("main", "new/a.txt")).to eq("a\n")
      expect(show("main", "bin/run")).to eq("#!/bin/sh\n")
      expect(git(path, "ls-tree", "main", "bin/run")).to start_with("100755 blob")
      expect(show("main", "README.md")).to eq("hello again\n")
      expect(show("main", "lib.rb")).to eq("def answer = 42\n")
      expect(git(path, "ls-tree", "-r", "--name-only", "main").split("\n"))
        .to eq(["README.md", "bin/run", "empty/.gitkeep", "lib.rb", "new/a.txt"])
      expect(git(path, "log", "-1", "--format=%an <%ae> %at %ai|%cn|%B", "main"))
        .to eq("Ada Lovelace <ada@example.com> 1700000000 2023-11-15 03:43:20 +0530|Ada Lovelace|edit files\n\nwith a body\n")
      # chmod
      repo.commit_files(branch: "main", message: "x", user: user, actions: [{ action: :chmod, path: "lib.rb", executable: true }])
      expect(git(path, "ls-tree", "main", "lib.rb")).to start_with("100755 blob")
    end

    it "creates a branch from start_branch and honours expected_old_oid" do
      ids
      u = repo.commit_files(branch: "topic", start_branch: "feature", message: "t", user: user.to_h,
                            actions: [{ action: :create, path: "t.txt", content: "t" }])
      expect(u.branch_created?).to be(true)
      expect(git(path, "rev-parse", "topic^").strip).to eq(ids[:f1])

      stale = ids[:f1]
      expect do
        repo.commit_files(branch: "topic", message: "late", user: user, expected_old_oid: stale,
                          actions: [{ action: :create, path: "late.txt", content: "x" }])
      end.to raise_error(GitRPC::FailedPreconditionError)
      expect(rev("topic")).to eq(u.commit_id)
    end

    it "refuses bad input with InvalidArgumentError and writes nothing" do
      ids
      objects = git(path, "count-objects", "-v")
      [
        -> { repo.commit_files(branch: "main", message: "m", user: GitRPC::User.new, actions: [{ action: :create, path: "a", content: "" }]) },
        -> { repo.commit_files(branch: "", message: "m", user: user, actions: [{ action: :create, path: "a", content: "" }]) },
        -> { repo.commit_files(branch: "main", message: "m", user: user, actions: [{ action: :create, path: "../x", content: "" }]) },
        -> { repo.commit_files(branch: "main", message: "m", user: user, actions: [{ action: :update, path: ".git/config", content: "" }]) }
      ].each do |call|
        expect(&call).to raise_error(GitRPC::InvalidArgumentError)
      end
      expect { repo.commit_files(branch: "main", message: "m", user: user, actions: [{ action: :create, path: "a", content: "!!", base64: true }]) }
        .to raise_error(ArgumentError, /invalid base64/)
      expect(rev("main")).to eq(ids[:c3])
      expect(git(path, "count-objects", "-v")).to eq(objects)
    end
  end

  it "creates and deletes branches and tags" do
    ids
    b = repo.create_branch("nb", "main~1", user: user)
    expect(b).to eq(GitRPC::Branch.new("refs/heads/nb", ids[:c2]))
    expect(rev("nb")).to eq(ids[:c2])
    expect { repo.create_branch("nb", "main", user: user) }.to raise_error(GitRPC::FailedPreconditionError)
    repo.update_branch("nb", ids[:c3], ids[:c2], user: user)
    expect(rev("nb")).to eq(ids[:c3])
    expect { repo.delete_branch("nb", user: user, expected_old_oid: ids[:c2]) }.to raise_error(GitRPC::FailedPreconditionError)
    repo.delete_branch("nb", user: user, expected_old_oid: ids[:c3])
    expect(exists?("refs/heads/nb")).to be(false)

    light = repo.create_tag("v1", "main", user: user)
    expect(light).to eq(GitRPC::Tag.new("v1", ids[:c3], ids[:c3], ""))
    expect(light.annotated?).to be(false)
    note = repo.create_tag("v2", "feature", user: user, message: "release\n", timestamp: Time.at(1_700_000_000))
    expect(note.annotated?).to be(true)
    expect(git(path, "cat-file", "-t", "v2").strip).to eq("tag")
    expect(note.id).to eq(rev("refs/tags/v2"))
    expect(note.target_id).to eq(ids[:f1])
    expect(git(path, "cat-file", "tag", "v2")).to include("tagger Ada Lovelace <ada@example.com> 1700000000 +0530\n\nrelease\n")
    expect { repo.create_tag("v2", "main", user: user) }.to raise_error(GitRPC::AlreadyExistsError)
    repo.delete_tag("v1", user: user)
    expect(exists?("refs/tags/v1")).to be(false)
  end

  describe "#merge" do
    it "proposes the merge commit, then applies it (or not) as the block decides" do
      ids
      seen = nil
      declined = repo.merge(ids[:f1], into: "main", message: "Merge feature", user: user) do |merge_id|
        seen = merge_id
        # The proposal is not in the branch yet.
        expect(rev("main")).to eq(ids[:c3])
        false
      end
      expect(declined).to be_nil
      expect(rev("main")).to eq(ids[:c3])

      u = repo.merge(ids[:f1], into: "main", message: "Merge feature", user: user) { |id| id.match?(/\A\h{40}\z/) }
      expect(u.commit_id).to eq(rev("main"))
      expect(git(path, "log", "-1", "--format=%P|%s|%an", "main").strip).to eq("#{ids[:c3]} #{ids[:f1]}|Merge feature|Ada Lovelace")
      expect(show("main", "feature.txt")).to eq("feature\n")
      expect(seen).to match(/\A\h{40}\z/)
    end

    it "raises MergeConflictError with the conflicting paths" do
      ids
      repo.commit_files(branch: "main", message: "m", user: user, actions: [{ action: :update, path: "README.md", content: "main\n" }])
      side = repo.commit_files(branch: "feature", message: "f", user: user,
                               actions: [{ action: :update, path: "README.md", content: "feature\n" }])
      before = rev("main")
      expect { repo.merge(side.commit_id, into: "main", message: "M", user: user) }
        .to raise_error(GitRPC::MergeConflictError) { |e|
          expect(e).to be_a(GitRPC::FailedPreconditionError)
          expect(e.conflicting_paths).to eq(["README.md"])
          expect(e.detail[:type]).to eq(:merge_conflict)
        }
      expect(rev("main")).to eq(before)
    end
  end

  it "fast-forwards, cherry-picks, reverts, squashes and merges to a ref" do
    ids
    u = repo.ff_merge(ids[:c3], branch: "feature", user: user) rescue $!
    expect(u).to be_a(GitRPC::FailedPreconditionError) # feature has f1, not an ancestor of c3
    repo.create_branch("old", ids[:c1], user: user)
    u = repo.ff_merge(ids[:c3], branch: "old", user: user)
    expect([u.commit_id, rev("old")]).to eq([ids[:c3], ids[:c3]])

    picked = repo.cherry_pick(ids[:f1], branch: "main", message: "pick f1", user: user)
    expect(git(path, "log", "-1", "--format=%P|%s", "main").strip).to eq("#{ids[:c3]}|pick f1")
    expect(show("main", "feature.txt")).to eq("feature\n")
    expect { repo.cherry_pick(ids[:f1], branch: "main", message: "again", user: user) }
      .to raise_error(GitRPC::FailedPreconditionError) { |e| expect(e.detail[:type]).to eq(:changes_already_applied) }

    reverted = repo.revert(picked.commit_id, branch: "main", message: "revert pick", user: user)
    expect(rev("main")).to eq(reverted.commit_id)
    expect(exists?("main:feature.txt")).to be(false)

    squashed = repo.squash(ids[:c1], ids[:c3], message: "all in one", user: user)
    expect(git(path, "log", "-1", "--format=%P|%s", squashed).strip).to eq("#{ids[:c1]}|all in one")
    expect(git(path, "rev-parse", "#{squashed}^{tree}")).to eq(git(path, "rev-parse", "#{ids[:c3]}^{tree}"))

    mr = repo.merge_to_ref(ids[:f1], first_parent_ref: "refs/heads/old", target_ref: "refs/merge-requests/1/merge",
                                     message: "MR", user: user)
    expect(rev("refs/merge-requests/1/merge")).to eq(mr)
    expect(git(path, "log", "-1", "--format=%P", mr).strip).to eq("#{ids[:c3]} #{ids[:f1]}")
    expect(rev("old")).to eq(ids[:c3])
  end
end
