# frozen_string_literal: true

require_relative "repository/diffs"
require_relative "repository/history"
require_relative "repository/files"
require_relative "repository/operations"

module GitRPC
  # A repository on a server: a storage name and a path relative to it. Cheap; holds no
  # connection of its own. The reads behind a forge's pages are in the modules it includes
  # (repository/diffs.rb, history.rb, files.rb), the writes in repository/operations.rb.
  class Repository
    include Diffs
    include History
    include Files
    include Operations

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

    # Local branches (GitRPC::Branch), in ref-name order.
    def branches
      native.branches(storage, relative_path)
    end

    # The commit (GitRPC::Commit) a revision resolves to, or nil.
    def find_commit(revision)
      native.find_commit(storage, relative_path, revision.to_s)
    end

    def commit_is_ancestor?(ancestor, child)
      native.commit_is_ancestor(storage, relative_path, ancestor.to_s, child.to_s)
    end

    # A blob (GitRPC::Blob) by object id, nil if there is none; its data limited to `limit`
    # bytes if given.
    def blob(oid, limit: nil)
      native.blob(storage, relative_path, oid.to_s, limit || -1)
    end

    # The entry (GitRPC::TreeEntry) at `path` in `revision`'s tree, or nil.
    def tree_entry(revision, path, limit: nil)
      native.tree_entry(storage, relative_path, revision.to_s, path.to_s, limit || 0)
    end

    # Commits reachable from `revisions` (rev-list syntax: "main", "^v1.0"), newest first, as
    # a lazy Enumerator: the call starts when iteration does, and stopping early cancels it.
    def list_commits(revisions)
      revisions = Array(revisions).map(&:to_s)
      native = self.native
      storage = self.storage
      path = relative_path
      Enumerator.new do |y|
        Client.drain(native.list_commits(storage, path, revisions), y) { |c| c }
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
