# frozen_string_literal: true

require "spec_helper"

RSpec.shared_examples "a gitrpc client" do
  let(:repo) { client.repository("default", "group/project.git") }

  it "answers the read API from a real repository" do
    ids = make_repo(storage, "group/project.git")
    expect(repo.exists?).to be(true)
    expect(client.repository("default", "nope.git").exists?).to be(false)
    expect(repo.default_branch).to eq("refs/heads/main")
    expect(repo.ref_exists?("refs/heads/feature")).to be(true)
    expect(repo.ref_exists?("refs/heads/nope")).to be(false)
    expect(repo.branches).to eq([GitRPC::Branch.new("refs/heads/feature", ids[:f1]),
                                 GitRPC::Branch.new("refs/heads/main", ids[:c3])])

    commit = repo.find_commit("main~1")
    expect(commit).to be_a(GitRPC::Commit)
    expect(commit.author).to be_a(GitRPC::Signature)
    expect(commit.id).to eq(ids[:c2])
    expect(commit.subject).to eq("c2: add lib")
    expect(commit.body).to eq("c2: add lib\n\nThe library answers.\n")
    expect(commit.subject.encoding).to eq(Encoding::UTF_8)
    expect(commit.parent_ids).to eq([ids[:c1]])
    expect(commit.tree_id).to match(/\A\h{40}\z/)
    expect(commit.author.name).to eq("Ada Lovelace")
    expect(commit.author.email).to eq("ada@example.com")
    expect(commit.author.time.to_i).to eq(1_700_000_000)
    expect(commit.author.time.utc_offset).to eq(5400)
    expect(commit.committer.time.utc_offset).to eq(-8 * 3600)
    expect(commit.author.timezone).to eq("+0130")
    expect(repo.find_commit("no-such-rev")).to be_nil

    expect(repo.commit_is_ancestor?(ids[:c1], ids[:c3])).to be(true)
    expect(repo.commit_is_ancestor?(ids[:f1], ids[:c3])).to be(false)

    entry = repo.tree_entry("main", "src/lib.rb")
    expect(entry).to be_a(GitRPC::TreeEntry)
    expect(entry.type).to eq(:blob)
    expect(entry.data).to eq("def answer = 42\n")
    expect(entry.mode).to eq(0o100644)
    expect(repo.tree_entry("main", "docs").type).to eq(:tree)
    expect(repo.tree_entry("main", "missing.txt")).to be_nil

    blob = repo.blob(entry.id)
    expect(blob).to be_a(GitRPC::Blob)
    expect(blob.id).to eq(entry.id)
    expect(blob.data).to eq("def answer = 42\n")
    expect(blob.data.encoding).to eq(Encoding::BINARY)
    expect(blob.size).to eq(16)
    expect(repo.blob(entry.id, limit: 3).data).to eq("def")
    expect(repo.blob("0" * 40)).to be_nil
    expect(repo.tree_entry("no-such-rev", "README.md")).to be_nil
  end

  it "answers nil for what is missing, and raises NotFoundError for a missing repository" do
    ids = make_repo(storage, "group/project.git")
    empty = client.repository("default", "empty.git").create(default_branch: "main")
    expect(empty.default_branch).to be_nil
    expect(empty.branches).to eq([])
    expect(empty.find_commit("main")).to be_nil
    missing = client.repository("default", "missing.git")
    expect { missing.find_commit("main") }.to raise_error(GitRPC::NotFoundError)
    expect { missing.blob(ids[:c1]) }.to raise_error(GitRPC::NotFoundError)
    expect { missing.tree_entry("main", "README.md") }.to raise_error(GitRPC::NotFoundError)
    expect { missing.default_branch }.to raise_error(GitRPC::NotFoundError)
  end

  it "lists commits lazily and cancels the call when iteration stops early" do
    ids = make_repo(storage, "group/project.git")
    commits = repo.list_commits(["main"])
    expect(commits).to be_an(Enumerator)
    expect(commits.map(&:id)).to eq([ids[:c3], ids[:c2], ids[:c1]])
    expect(repo.list_commits(["main", "^feature"]).map(&:id)).to eq([ids[:c3], ids[:c2]])
    expect(repo.list_commits("feature").first.id).to eq(ids[:f1])
    expect(repo.list_commits(["main"]).lazy.map(&:subject).first(2)).to eq(["c3: docs", "c2: add lib"])
  end

  it "creates and removes repositories" do
    expect(repo.exists?).to be(false)
    expect(repo.create(default_branch: "trunk")).to be(repo)
    expect(repo.exists?).to be(true)
    expect(File.read(File.join(storage, "group/project.git/HEAD"))).to eq("ref: refs/heads/trunk\n")
    expect { repo.create }.to raise_error(GitRPC::AlreadyExistsError)
    repo.remove
    expect(repo.exists?).to be(false)
    expect(File.exist?(File.join(storage, "group/project.git"))).to be(false)
    expect { repo.remove }.to raise_error(GitRPC::NotFoundError)
  end

  it "raises the right error for bad input" do
    expect { client.repository("nope", "x.git").exists? }.to raise_error(GitRPC::InvalidArgumentError, /nope/)
    expect { client.repository("default", "../escape.git").exists? }.to raise_error(GitRPC::InvalidArgumentError)
    expect { client.repository("default", "missing.git").default_branch }.to raise_error(GitRPC::NotFoundError)
    make_repo(storage, "group/project.git")
    expect { repo.ref_exists?("main") }.to raise_error(GitRPC::InvalidArgumentError)
    expect { repo.commit_is_ancestor?("", "main") }.to raise_error(GitRPC::InvalidArgumentError)
  end

  it "makes raw calls with protobuf bytes" do
    make_repo(storage, "group/project.git")
    req = Proto.bytes(1, Proto.repository("default", "group/project.git")) + Proto.bytes(2, "refs/heads/main")
    resp = client.call("/gitaly.RefService/RefExists", req)
    expect(resp.encoding).to eq(Encoding::BINARY)
    expect(Proto.decode(resp)[1]).to eq([1])

    stream = client.call_stream("/gitaly.RefService/FindLocalBranches",
                                Proto.bytes(1, Proto.repository("default", "group/project.git")))
    names = stream.flat_map { |m| Proto.decode(m)[2].map { |b| Proto.decode(b)[1].first } }
    expect(names).to eq(%w[refs/heads/feature refs/heads/main])

    expect { client.call("/gitaly.RefService/NoSuchMethod", "") }
      .to raise_error(GitRPC::UnimplementedError, "unimplemented: unknown method NoSuchMethod for service gitaly.RefService")
    expect { client.call("not a method", "") }.to raise_error(GitRPC::InvalidArgumentError)
    expect { client.call("/gitaly.RefService/RefExists", "\xff\xff".b) }.to raise_error(GitRPC::RPCError)
  end

  it "is shared by many threads" do
    ids = make_repo(storage, "group/project.git")
    results = Array.new(8) do
      Thread.new { Array.new(10) { repo.find_commit("main").id } }
    end.flat_map(&:value)
    expect(results).to all(eq(ids[:c3]))
  end
end

RSpec.describe GitRPC::Repository do
  include_context "temp storage"

  context "with a remote client" do
    around do |example|
      GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{@dir}/s.sock"]) do |server|
        @server = server
        example.run
      end
    end

    let(:client) { GitRPC::Client.new(@server.address, timeout: 10) }

    it_behaves_like "a gitrpc client"
  end

  context "with a client over TCP" do
    around do |example|
      GitRPC::Server.start(storages: { "default" => storage }, listen: ["tcp://127.0.0.1:0"]) do |server|
        @server = server
        example.run
      end
    end

    let(:client) { GitRPC::Client.new(@server.address) }

    it_behaves_like "a gitrpc client"
  end

  context "with an in-process client" do
    let(:client) { GitRPC::Client.new(storages: { "default" => storage }) }

    after { client.close }

    it_behaves_like "a gitrpc client"
  end
end
