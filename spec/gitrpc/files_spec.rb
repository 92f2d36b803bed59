# frozen_string_literal: true

require "spec_helper"
require "digest"
require "stringio"

# Repository#archive, #search_files, #branches_containing and #tags_containing against
# git's own answers.
RSpec.shared_examples "a files reader" do
  let(:repo) { client.repository("default", "group/files.git") }

  # make_repo's history, then on main: c4 (a nested directory, a file for content search,
  # .gitattributes with export-ignore and export-subst), tags v0 (c1, lightweight) and v1
  # (c3, annotated); branch `big` (from c4) adds 3 MiB of incompressible data.
  def make_files(storage)
    ids = make_repo(storage, "group/files.git")
    path = ids[:path]
    in_tmpdir do |work|
      git(work, "clone", "-q", path, ".")
      write = ->(f, s) { FileUtils.mkdir_p(File.dirname(File.join(work, f))); File.binwrite(File.join(work, f), s) }
      write.("src/deep/x.rb", "def x = :deep\n")
      write.("src/deep/more/y.rb", "def y = :more\n")
      write.("notes.txt", (1..30).map { |i| [3, 4, 20].include?(i) ? "the Answer is #{i}\n" : "filler #{i}\n" }.join)
      write.("bin.dat", "answer\0binary\n")
      write.("ignored.txt", "never archived\n")
      write.("subst.txt", "commit $Format:%H$\n")
      write.(".gitattributes", "ignored.txt export-ignore\nsubst.txt export-subst\n")
      git(work, "add", ".")
      git(work, "commit", "-qm", "c4: files")
      git(work, "tag", "v0", ids[:c1])
      git(work, "tag", "-a", "v1", "-m", "release", ids[:c3])
      git(work, "checkout", "-q", "-b", "big")
      write.("big.bin", Random.new(42).bytes(3 * 1024 * 1024))
      git(work, "add", ".")
      git(work, "commit", "-qm", "c5: big")
      git(work, "push", "-q", "origin", "main", "big", "v0", "v1")
    end
    ids.merge(c4: git(path, "rev-parse", "main").strip, c5: git(path, "rev-parse", "big").strip)
  end

  # `git archive` as the server runs it (attributes from HEAD in a bare repository).
  def git_archive(path, *args)
    git(path, "-c", "attr.tree=HEAD", "archive", *args).b
  end

  def digest(bytes)
    [bytes.bytesize, Digest::SHA256.hexdigest(bytes)]
  end

  # Entry names of an archive, as `tar -t` (any compression) or `zipinfo -1` lists them.
  def listing(bytes, zip: false)
    in_tmpdir do |d|
      f = File.join(d, "a")
      File.binwrite(f, bytes)
      out, err, status = Open3.capture3(*(zip ? ["zipinfo", "-1", f] : ["tar", "-tf", f]))
      raise "listing failed: #{err}" unless status.success?

      out.lines.map(&:chomp).sort
    end
  end

  it "archives in every format, equal to git archive" do
    ids = make_files(storage)
    path = ids[:path]
    { tar: "tar", tar_gz: "tar.gz", zip: "zip" }.each do |format, git_format|
      got = repo.archive("main", format: format, prefix: "p").to_a.join
      want = git_archive(path, "--format=#{git_format}", "--prefix=p/", "main")
      expect(digest(got)).to eq(digest(want)), "#{format}: #{got.bytesize} vs #{want.bytesize} bytes"
    end
    tar = git_archive(path, "--format=tar", "--prefix=p/", "main")
    bz2 = repo.archive("main", format: :tar_bz2, prefix: "p").to_a.join
    expect(bz2).to start_with("BZh")
    plain, status = Open3.capture2("bzip2", "-dc", stdin_data: bz2, binmode: true)
    expect(status).to be_success
    expect(digest(plain.b)).to eq(digest(tar))
    # Unpacked by the tools: export-ignore applied, names kept.
    names = listing(tar)
    expect(names).to include("p/docs/a b.txt", "p/src/deep/more/y.rb", "p/subst.txt")
    expect(names.grep(/ignored/)).to eq([])
    expect(listing(bz2)).to eq(names)
    expect(listing(repo.archive("main", format: :tar_gz, prefix: "p").to_a.join)).to eq(names)
    expect(listing(repo.archive("main", format: :zip, prefix: "p").to_a.join, zip: true)).to eq(names)
    # The default format is tar.gz; no prefix: entries start at "/" (as Gitaly).
    default = git_archive(path, "--format=tar.gz", "--prefix=/", "main")
    expect(digest(repo.archive("main").to_a.join)).to eq(digest(default))
    small = git_archive(path, "--format=tar", "--prefix=q/", ids[:c3])
    expect(repo.archive(ids[:c3], format: "tar", prefix: "q").first).to eq(small)
  end

  it "streams a multi-MiB archive in pieces, to a block, an IO or a lazy Enumerator" do
    ids = make_files(storage)
    path = ids[:path]
    want = git_archive(path, "--format=tar", "--prefix=p/", "big")
    expect(want.bytesize).to be > 3 * 1024 * 1024
    pieces = []
    expect(repo.archive("big", format: :tar, prefix: "p") { |piece| pieces << piece }).to be_nil
    expect(pieces.size).to be > 1
    expect(pieces.map(&:encoding).uniq).to eq([Encoding::BINARY])
    expect(pieces.map(&:bytesize).max).to be <= 128 * 1024
    expect(digest(pieces.join)).to eq(digest(want))

    in_tmpdir do |d|
      file = File.join(d, "a.zip")
      written = File.open(file, "wb") { |f| repo.archive("big", format: :zip, prefix: "p", to: f) }
      zip = git_archive(path, "--format=zip", "--prefix=p/", "big")
      expect(written).to eq(zip.bytesize)
      expect(digest(File.binread(file))).to eq(digest(zip))
    end
    io = StringIO.new(String.new(encoding: Encoding::BINARY))
    expect(repo.archive("big", format: :tar, prefix: "p", to: io)).to eq(want.bytesize)
    expect(digest(io.string)).to eq(digest(want))

    # Lazy: nothing is called until iteration; stopping after the first piece cancels the
    # call (no git is left behind: checked after every example).
    lazy = repo.archive("big", format: :tar, prefix: "p")
    expect(lazy).to be_an(Enumerator)
    first = lazy.first
    expect(first.bytesize).to be_between(1, 128 * 1024)
    expect(want).to start_with(first)
    # A block that stops early cancels it too.
    seen = 0
    repo.archive("big", format: :tar_gz, prefix: "p") { |_| break if (seen += 1) == 2 }
    expect(seen).to eq(2)
  end

  it "archives a directory, with excludes, elided, as git archive does" do
    ids = make_files(storage)
    path = ids[:path]
    got = repo.archive("main", format: :tar, prefix: "p", path: "src", exclude: ["src/deep/more"]).to_a.join
    want = git_archive(path, "--format=tar", "--prefix=p/", "main", "--", "src", ":(exclude)src/deep/more")
    expect(digest(got)).to eq(digest(want))
    expect(listing(got)).to eq(["p/", "p/src/", "p/src/deep/", "p/src/deep/x.rb", "p/src/lib.rb"])
    elided = repo.archive("main", format: :tar, prefix: "p", path: "src/deep", exclude: "src/deep/more",
                                  elide_path: true).to_a.join
    expect(listing(elided)).to eq(["p/", "p/x.rb"])
    spaced = repo.archive("main", format: :zip, prefix: "p", path: "docs").to_a.join
    expect(listing(spaced, zip: true)).to eq(["p/", "p/docs/", "p/docs/a b.txt"])
  end

  it "refuses bad archive requests with the server's errors, and unknown formats before any call" do
    ids = make_files(storage)
    expect { repo.archive("main", format: :rar) }.to raise_error(ArgumentError, /format must be one of/)
    missing = client.repository("default", "no/such.git")
    expect { missing.archive("main", format: :tar_xz) { nil } }.to raise_error(ArgumentError, /tar_xz/)
    expect { repo.archive("main", to: Object.new) }.to raise_error(ArgumentError, /write/)
    expect { repo.archive("main", to: StringIO.new) { nil } }.to raise_error(ArgumentError, /not both/)
    expect { missing.archive("main").to_a }.to raise_error(GitRPC::NotFoundError)
    expect { repo.archive("nope").to_a }.to raise_error(GitRPC::FailedPreconditionError, /path doesn't exist/)
    expect { repo.archive("nope") { nil } }.to raise_error(GitRPC::FailedPreconditionError)
    expect { repo.archive("-x", format: :zip).first }.to raise_error(GitRPC::InvalidArgumentError, /commitId/)
    expect { repo.archive(ids[:c4], path: "gone").to_a }.to raise_error(GitRPC::FailedPreconditionError)
    expect { repo.archive("main", path: "../..").to_a }.to raise_error(GitRPC::InvalidArgumentError, /escapes/)
    expect { repo.archive("main", path: "src", exclude: ["docs"], elide_path: true).to_a }
      .to raise_error(GitRPC::InvalidArgumentError, /not a subdirectory/)
  end

  it "searches file names as git ls-tree lists them" do
    ids = make_files(storage)
    all = git(ids[:path], "ls-tree", "-r", "--name-only", "main").lines.map(&:chomp)
    rb = all.grep(/\.rb\z/)
    expect(rb.size).to eq(3)
    expect(repo.search_files(name: /\.rb\z/, ref: "main")).to eq(rb)
    expect(repo.search_files(name: /\.rb\z/, ref: "main", limit: 2)).to eq(rb.first(2))
    expect(repo.search_files(name: /\.rb\z/, ref: "main", limit: 1, offset: 1)).to eq([rb[1]])
    expect(repo.search_files(name: /\.RB\z/i, ref: "main")).to eq(rb)
    expect(repo.search_files(name: /\.rb\z/, ref: "main", path: "src/deep")).to eq(rb.grep(%r{\Asrc/deep/}))
    expect(repo.search_files(name: "src", ref: "main")).to eq(all.grep(%r{\Asrc/}))
    expect(repo.search_files(name: "docs/a b.txt", ref: "main")).to eq(["docs/a b.txt"])
    expect(repo.search_files(name: ".", ref: ids[:c1])).to eq(["README.md"])
    expect(repo.search_files(name: /big/)).to eq([]) # HEAD is main
    expect(repo.search_files(name: /big/, ref: "big")).to eq(["big.bin"])
    expect(repo.search_files(name: /./, ref: "nope")).to eq([])
    expect { repo.search_files(name: /(?<=a)b/) }.to raise_error(GitRPC::InvalidArgumentError, /filter did not compile/)
    expect { repo.search_files(name: /a/, ref: "-x") }.to raise_error(GitRPC::InvalidArgumentError, /invalid ref/)
    expect { repo.search_files(name: /a/, limit: -1) }.to raise_error(ArgumentError)
  end

  it "searches file contents as git grep finds them" do
    ids = make_files(storage)
    found = repo.search_files(content: "answer", ref: "main")
    expect(found).to all(be_a(GitRPC::ContentMatch))
    # Every line `git grep -n` reports is in a block, and every block holds one.
    hits = git(ids[:path], "grep", "-n", "-i", "-I", "-P", "-e", "answer", "main").lines.map do |l|
      _, file, number, text = l.chomp.split(":", 4)
      [file, Integer(number), text]
    end
    expect(hits.map(&:first).uniq).to eq(["notes.txt", "src/lib.rb"])
    lines = found.flat_map { |m| m.lines.map { |n, text| [m.path, n, text] } }
    expect(lines).to include(*hits)
    found.each { |m| expect(hits.any? { |h| h[0] == m.path && m.lines.map(&:first).include?(h[1]) }).to be(true) }
    # The blocks as git prints them: notes.txt 1-6 and 18-22 (two lines of context), lib.rb 1.
    expect(found.map { |m| [m.path, m.line_number, m.lines.map(&:first)] }).to eq(
      [["notes.txt", 1, [1, 2, 3, 4, 5, 6]], ["notes.txt", 18, [18, 19, 20, 21, 22]], ["src/lib.rb", 1, [1]]]
    )
    notes = found.first
    expect(notes.data).to eq((1..6).map { |i| [3, 4].include?(i) ? "the Answer is #{i}\n" : "filler #{i}\n" }.join)
    expect(notes.lines[2]).to eq([3, "the Answer is 3"])
    expect(found.none? { |m| m.path == "bin.dat" }).to be(true)
    expect(repo.search_files(content: /ANSWER is \d+/, ref: ids[:c4]).map(&:line_number)).to eq([1, 18])
    expect(repo.search_files(content: "zzz-nothing")).to eq([])
    expect(repo.search_files(content: "answer", ref: "nope")).to eq([])
    expect(repo.search_files(content: "def", ref: "main:src/deep").map(&:path)).to eq(["more/y.rb", "x.rb"])
    expect { repo.search_files(content: "x", ref: "-x") }.to raise_error(GitRPC::InvalidArgumentError, /invalid ref/)
    expect { repo.search_files(content: "a" * 1001) }.to raise_error(GitRPC::InvalidArgumentError, /maximum length/)
    expect { repo.search_files }.to raise_error(ArgumentError, /exactly one/)
    expect { repo.search_files(name: /a/, content: "a") }.to raise_error(ArgumentError, /exactly one/)
    expect { repo.search_files(content: "a", limit: 1) }.to raise_error(ArgumentError)
  end

  it "lists the branches and tags containing a commit as git branch/tag --contains" do
    ids = make_files(storage)
    path = ids[:path]
    [ids[:c1], ids[:c3], ids[:f1], ids[:c5]].each do |sha|
      branches = git(path, "branch", "--format=%(refname:short)", "--contains", sha).lines.map(&:chomp)
      tags = git(path, "tag", "--contains", sha).lines.map(&:chomp)
      expect(repo.branches_containing(sha)).to eq(branches)
      expect(repo.tags_containing(sha)).to eq(tags)
    end
    expect(repo.branches_containing(ids[:c1])).to eq(%w[big feature main])
    expect(repo.tags_containing(ids[:c1])).to eq(%w[v0 v1])
    expect(repo.tags_containing(ids[:c4])).to eq([])
    expect(repo.branches_containing(ids[:c1], limit: 2)).to eq(%w[big feature])
    expect(repo.tags_containing(ids[:c1], limit: 1)).to eq(%w[v0])
    expect { repo.branches_containing("main") }.to raise_error(GitRPC::InvalidArgumentError)
    expect { repo.tags_containing(ids[:c1][0, 10]) }.to raise_error(GitRPC::InvalidArgumentError)
    expect { repo.branches_containing(ids[:c1], limit: -1) }.to raise_error(ArgumentError)
  end
end

RSpec.describe GitRPC::Repository::Files do
  include_context "temp storage"

  include_examples "with a remote and an in-process client", "a files reader"
end
