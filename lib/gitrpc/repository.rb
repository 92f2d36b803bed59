# frozen_string_literal: true

module GitRPC
  # A repository on a server: a storage name and a path relative to it. Cheap; holds no
  # connection of its own.
  class Repository
    attr_reader :client, :storage, :relative_path

    def initialize(client, storage, relative_path)
      @client = client
      @storage = storage.to_s
      @relative_path = relative_path.to_s
    end

    def exists?
      native.repository_exists(storage, relative_path)
    end

    # Create an empty repository; AlreadyExistsError if there is one.
    def create(default_branch: nil)
      native.create_repository(storage, relative_path, default_branch.to_s)
      self
    end

    def remove
      native.remove_repository(storage, relative_path)
      nil
    end

    # Does the fully qualified ref ("refs/heads/main") exist?
    def ref_exists?(ref)
      native.ref_exists(storage, relative_path, ref.to_s)
    end

    # The default branch as a full ref name ("refs/heads/main"), nil if there is none.
    def default_branch
      native.default_branch(storage, relative_path)
    end

    def branches
      native.branches(storage, relative_path).map { |name, target| Branch.new(name, target) }
    end

    # The commit a revision resolves to, or nil.
    def find_commit(revision)
      Commit.from_native(native.find_commit(storage, relative_path, revision.to_s))
    end

    def commit_is_ancestor?(ancestor, child)
      native.commit_is_ancestor(storage, relative_path, ancestor.to_s, child.to_s)
    end

    # A blob by object id (nil if missing), its data limited to `limit` bytes if given.
    def blob(oid, limit: nil)
      raw = native.blob(storage, relative_path, oid.to_s, limit || -1)
      raw && Blob.new(*raw)
    end

    # The entry at `path` in `revision`'s tree, or nil.
    def tree_entry(revision, path, limit: nil)
      raw = native.tree_entry(storage, relative_path, revision.to_s, path.to_s, limit || 0)
      raw && TreeEntry.new(*raw)
    end

    # Commits reachable from `revisions` (rev-list syntax: "main", "^v1.0"), newest first, as
    # a lazy Enumerator: the call starts when iteration does, and stopping early cancels it.
    def list_commits(revisions)
      revisions = Array(revisions).map(&:to_s)
      native = self.native
      storage = self.storage
      path = relative_path
      Enumerator.new do |y|
        Client.drain(native.list_commits(storage, path, revisions), y) { |c| Commit.from_native(c) }
      end
    end

    def inspect
      "#<GitRPC::Repository #{storage}:#{relative_path}>"
    end

    private

    def native
      @client.native
    end
  end
end
