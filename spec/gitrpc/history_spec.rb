# frozen_string_literal: true

require "spec_helper"

# Repository#tree(with_last_commits:), #commits, #blame, #diverging_count, #commit_stats
# against git's own answers.
RSpec.shared_examples "a history reader" do
  let(:repo) { client.repository("default", "group/history.git") }

  # make_repo's history, then on main: a merge of feature, a rename of src/lib.rb, and a
  # later commit by another author.
  def make_history(storage)
    ids = make_repo(storage, "group/history.git")
    path = ids[:path]
    in_tmpdir do |work|
      git(work, "clone", "-q", path, ".")
      git(work, "merge", "-q", "--no-ff", "-m", "m4: merge feature", "origin/feature")
      git(work, "mv", "src/lib.rb", "src/core.rb")
      git(work, "commit", "-qam", "c5: rename lib to core")
      File.write(File.join(work, "README.md"), "hello\nagain\n")
      git(work, "commit", "-qam", "c6: readme by Grace",
          env: { "GIT_AUTHOR_NAME" => "Grace Hopper", "GIT_AUTHOR_DATE" => "1700500000 +0000",
                 "GIT_COMMITTER_DATE" => "1700500000 +0000" })
      git(work, "push", "-q", "origin", "main")
    end
    ids
  end

  def git_log(path, *args)
    git(path, "log", "--format=%H", *args).lines.map(&:strip)
  end

  it "lists a directory with each entry's last commit, as git log -1 says" do
    ids = make_history(storage)
    entries = repo.tree("main", with_last_commits: true)
    expect(entries.map(&:path)).to eq(["docs", "src", "README.md", "feature.txt"])
    expect(entries.map(&:type)).to eq(%i[tree tree blob blob])
    entries.each do |e|
      expect(e).to be_a(GitRPC::TreeEntry)
      expect(e.last_commit).to be_a(GitRPC::Commit)
      expect(e.last_commit.id).to eq(git(ids[:path], "log", "-1", "--format=%H", "main", "--", e.path).strip)
      expect(e.id).to eq(git(ids[:path], "rev-parse", "main:#{e.path}").strip)
    end
    expect(entries.find { |e| e.path == "feature.txt" }.last_commit.id).to eq(ids[:f1])

    src = repo.tree("main", "src", with_last_commits: true)
    expect(src.map(&:path)).to eq(["src/core.rb"])
    expect(src.first.last_commit.subject).to eq("c5: rename lib to core")
    expect(repo.tree("main", "src/").map(&:path)).to eq(["src/core.rb"])

    page = repo.tree("main", "", with_last_commits: true, offset: 1, limit: 2)
    expect(page.map(&:path)).to eq(%w[src README.md])
    expect(page.map { |e| e.last_commit.id }).to eq(entries[1, 2].map { |e| e.last_commit.id })
    expect(repo.tree("main", offset: 10, with_last_commits: true)).to eq([])
    expect(repo.tree("main").map(&:last_commit)).to all(be_nil)
    expect { repo.tree("main", offset: -1) }.to raise_error(ArgumentError)
    expect(repo.tree("no-such-rev")).to be_nil
    expect(repo.tree("main", "nope", with_last_commits: true)).to be_nil
    expect(repo.tree("main", "README.md")).to eq([])
    expect { repo.tree("-x") }.to raise_error(GitRPC::InvalidArgumentError, /revision/)
  end

  it "finds commits as git log does, lazily" do
    ids = make_history(storage)
    path = ids[:path]
    commits = repo.commits
    expect(commits).to be_an(Enumerator)
    expect(commits.map(&:id)).to eq(git_log(path, "-20", "main"))
    expect(repo.commits("main", limit: 2, offset: 1).map(&:id)).to eq(git_log(path, "--skip=1", "-2", "main"))
    expect(repo.commits("main", path: "README.md").map(&:id)).to eq(git_log(path, "main", "--", "README.md"))
    expect(repo.commits("main", path: "src/core.rb", follow: true).map(&:subject))
      .to eq(["c5: rename lib to core", "c2: add lib"])
    expect(repo.commits("main", path: "src/core.rb", follow: true, offset: 1).map(&:id)).to eq([ids[:c2]])
    expect(repo.commits("main", skip_merges: true).map(&:id)).to eq(git_log(path, "--no-merges", "main"))
    expect(repo.commits("main", author: "Grace").map(&:subject)).to eq(["c6: readme by Grace"])
    expect(repo.commits("main", message: "DOCS").map(&:id)).to eq([ids[:c3]])
    expect(repo.commits("main", after: Time.at(1_700_400_000)).map(&:subject)).to eq(["c6: readme by Grace"])
    expect(repo.commits("main", before: 1_700_400_000).count).to eq(6)
    expect(repo.commits("main", first_parent: true).map(&:id)).to eq(git_log(path, "--first-parent", "main"))
    expect(repo.commits("main", order: :topo).map(&:id)).to eq(git_log(path, "--topo-order", "main"))
    expect(repo.commits(all: true).map(&:id)).to eq(git_log(path, "--all", "--reverse", "-20"))
    expect(repo.commits("main").lazy.map(&:subject).first(1)).to eq(["c6: readme by Grace"])
    expect { repo.commits("nope").to_a }.to raise_error(GitRPC::NotFoundError, /commits not found/)
    expect { repo.commits("main", order: :date) }.to raise_error(ArgumentError)
  end

  it "blames as git blame --porcelain, counts divergence and stats" do
    ids = make_history(storage)
    path = ids[:path]
    blame = repo.blame("main", "src/core.rb")
    expect(blame).to eq(git(path, "blame", "-p", "main", "--", "src/core.rb"))
    expect(blame.encoding).to eq(Encoding::BINARY)
    expect(repo.blame("main", "src/core.rb", range: 1..1)).to eq(git(path, "blame", "-p", "-L1,1", "main", "--", "src/core.rb"))
    expect { repo.blame("main", "nope.rb") }.to raise_error(GitRPC::NotFoundError, /path not found in revision/)
    expect { repo.blame("main", "src/core.rb", range: "9,10") }
      .to raise_error(GitRPC::InvalidArgumentError, /range is outside of the file length/)

    expect(repo.diverging_count("main", "feature")).to eq([5, 0])
    expect(repo.diverging_count("feature", ids[:c3])).to eq([1, 2])
    expect(repo.diverging_count("main", "feature", max_count: 2)).to eq(
      git(path, "rev-list", "--count", "--left-right", "--max-count=2", "main...feature").split.map(&:to_i)
    )

    stats = repo.commit_stats("main")
    expect(stats).to be_a(GitRPC::CommitStats)
    expect(stats.id).to eq(git(path, "rev-parse", "main").strip)
    expect([stats.additions, stats.deletions, stats.files]).to eq([1, 0, 1])
    renamed = repo.commit_stats("main~1")
    expect([renamed.additions, renamed.deletions, renamed.files]).to eq([0, 0, 1])
    expect { repo.commit_stats("nope") }.to raise_error(GitRPC::InternalError, /object not found/)
  end
end

RSpec.describe GitRPC::Repository::History do
  include_context "temp storage"

  include_examples "with a remote and an in-process client", "a history reader"
end
