# frozen_string_literal: true

require "spec_helper"

# Repository#diff and #changed_paths against git's own answers.
RSpec.shared_examples "a diff reader" do
  let(:repo) { client.repository("default", "group/diffs.git") }

  # make_repo's history, then on main: a rename of src/lib.rb with an edit, a big file.
  def make_diffs(storage)
    ids = make_repo(storage, "group/diffs.git")
    path = ids[:path]
    in_tmpdir do |work|
      git(work, "clone", "-q", path, ".")
      git(work, "mv", "src/lib.rb", "src/core.rb")
      File.write(File.join(work, "src/core.rb"), "def answer = 42\ndef question = nil\n")
      File.write(File.join(work, "big.txt"), (1..2000).map { |i| "line #{i}\n" }.join)
      git(work, "add", ".")
      git(work, "commit", "-qm", "c4: rename and big")
      git(work, "push", "-q", "origin", "main")
    end
    ids.merge(c4: git(path, "rev-parse", "main").strip)
  end

  it "streams the diff of two commits as git diff shows it" do
    ids = make_diffs(storage)
    diff = repo.diff(ids[:c3], ids[:c4])
    expect(diff).to be_a(Enumerator)
    files = diff.to_a
    expect(files).to all(be_a(GitRPC::Diff))
    raw = git(ids[:path], "diff", "--raw", "--no-abbrev", "--find-renames=30%", ids[:c3], ids[:c4]).lines
    expect(files.map(&:path)).to eq(raw.map { |l| l.split("\t").last.strip })
    core = files.find { |d| d.path == "src/core.rb" }
    expect([core.from_path, core.old_mode, core.new_mode]).to eq(["src/lib.rb", 0o100644, 0o100644])
    expect(core.patch).to include("+def question = nil\n")
    expect(core.patch.encoding).to eq(Encoding::BINARY)
    expect([core.lines_added, core.lines_removed]).to eq([1, 0])
    big = files.find { |d| d.path == "big.txt" }
    expect(big.patch.bytesize).to be > 5120 # put together from several messages
    expect(big.lines_added).to eq(2000)
    expect(files.map { |d| [d.too_large?, d.collapsed?, d.overflow?] }.uniq).to eq([[false, false, false]])
    # lazy: the first file without reading the rest
    expect(repo.diff(ids[:c3], ids[:c4]).first.path).to eq(files.first.path)
    expect(repo.diff(ids[:c3], ids[:c4], paths: ["src"]).map(&:path)).to eq(["src/core.rb"])
  end

  it "applies the limits" do
    ids = make_diffs(storage)
    large = repo.diff(ids[:c3], ids[:c4], enforce_limits: true, max_files: 10, max_lines: 10_000,
                                          max_bytes: 1_000_000, max_patch_bytes: 1000).to_a
    expect(large.find { |d| d.path == "big.txt" }).to be_too_large
    expect(large.find { |d| d.path == "big.txt" }.patch).to eq("")
    expect(large.find { |d| d.path == "src/core.rb" }).not_to be_too_large
    collapsed = repo.diff(ids[:c3], ids[:c4], collapse_diffs: true, safe_max_files: 1, safe_max_lines: 10_000,
                                              safe_max_bytes: 1_000_000).to_a
    expect(collapsed.map(&:collapsed?)).to eq([false, true])
    over = repo.diff(ids[:c3], ids[:c4], enforce_limits: true, max_files: 1, max_lines: 10_000,
                                         max_bytes: 1_000_000, max_patch_bytes: 100_000).to_a
    expect(over.last).to be_overflow
    expect(over.size).to eq(2)
    expect { repo.diff(ids[:c3], ids[:c4], bogus: 1) }.to raise_error(ArgumentError, /bogus/)
    expect { repo.diff("", ids[:c4]).to_a }.to raise_error(GitRPC::InvalidArgumentError, /empty LeftCommitId/)
    expect { repo.diff("-x", ids[:c4]).to_a }.to raise_error(GitRPC::InvalidArgumentError)
  end

  it "lists changed paths" do
    ids = make_diffs(storage)
    paths = repo.changed_paths(ids[:c4], find_renames: true)
    expect(paths).to all(be_a(GitRPC::ChangedPath))
    core = paths.find { |p| p.path == "src/core.rb" }
    expect([core.status, core.old_path, core.commit_id]).to eq([:renamed, "src/lib.rb", ids[:c4]])
    plain = repo.changed_paths(ids[:c4])
    expect(plain.map { |p| [p.status, p.path] }).to match_array(
      [[:added, "big.txt"], [:added, "src/core.rb"], [:deleted, "src/lib.rb"]]
    )
    trees = repo.changed_paths(ids[:c1], ids[:c4])
    want = git(ids[:path], "diff-tree", "-r", "--name-only", "--no-renames", ids[:c1], ids[:c4]).lines.map(&:strip)
    expect(trees.map(&:path)).to eq(want)
    expect { repo.changed_paths("nope") }.to raise_error(GitRPC::NotFoundError, /revision can not be found/)
  end
end

RSpec.describe GitRPC::Repository::Diffs do
  include_context "temp storage"

  include_examples "with a remote and an in-process client", "a diff reader"
end
