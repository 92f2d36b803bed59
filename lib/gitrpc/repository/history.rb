# frozen_string_literal: true

module GitRPC
  # A directory's entry and the last commit that changed it (ListLastCommitsForTree).
  LastCommit = Struct.new(:path, :commit)

  # What a commit changed against its first parent (the empty tree for a root commit).
  CommitStats = Struct.new(:id, :additions, :deletions, :files)

  class Repository
    # History: a directory's entries with their last commits, commits (FindCommits), blame,
    # diverging_count, commit_stats. Included into Repository: methods here use its storage,
    # relative_path and native.
    module History
      # The entries (GitRPC::TreeEntry, with `path`) of the directory `path` ("" for the root)
      # at `revision`: trees first, then files, then submodules; nil if the revision or the
      # directory doesn't exist ([] for a file). `offset`/`limit` page them; with
      # `with_last_commits: true` each entry's `last_commit` is the GitRPC::Commit that last
      # changed it (what `git log -1 <revision> -- <entry>` says), found in one walk of the
      # directory's history (ListLastCommitsForTree).
      def tree(revision, path = "", with_last_commits: false, offset: 0, limit: nil)
        offset = Integer(offset)
        raise ArgumentError, "offset must not be negative" if offset.negative?
        raise ArgumentError, "limit must not be negative" if limit && Integer(limit).negative?

        dir = path.to_s.sub(%r{/+\z}, "")
        dir = "" if dir == "."
        entries = native.tree_entries(storage, relative_path, revision.to_s, dir)
        return nil if entries.nil?

        page = limit ? entries[offset, Integer(limit)] || [] : entries.drop(offset)
        return page unless with_last_commits && !page.empty?

        prefix = dir.empty? ? "" : "#{dir}/"
        found = native.last_commits_for_tree(storage, relative_path, revision.to_s, prefix, offset, page.size)
        by_path = found.to_h { |l| [l.path.b, l.commit] }
        page.each { |e| e.last_commit = by_path[e.path.b] }
      end

      # Commits from `revision` (nil: the default branch) as a lazy Enumerator of
      # GitRPC::Commit (FindCommits): `path` (a String or an Array) limits them to commits
      # touching it, `follow: true` follows one path across renames; `author` and `message`
      # are regular expressions (the message's case-insensitive); `before`/`after` are Times
      # (or epoch seconds); `order: :topo`; `all: true` walks every ref, oldest first.
      def commits(revision = nil, path: nil, limit: 20, offset: 0, follow: false, skip_merges: false,
                  author: nil, message: nil, before: nil, after: nil, order: nil, all: false,
                  first_parent: false)
        raise ArgumentError, "order must be nil or :topo" unless order.nil? || order == :topo

        opts = {
          revision: revision&.to_s, paths: Array(path).map(&:to_s), limit: Integer(limit),
          offset: Integer(offset), follow: follow ? true : false, skip_merges: skip_merges ? true : false,
          author: author&.to_s, message: message&.to_s, before: before&.to_i, after: after&.to_i,
          topo: order == :topo, all: all ? true : false, first_parent: first_parent ? true : false
        }.freeze
        native = self.native
        storage = self.storage
        rel = relative_path
        Enumerator.new do |y|
          Client.drain(native.find_commits(storage, rel, opts), y) { |c| c }
        end
      end

      # `git blame --porcelain` of `path` at `revision` (a binary String); `range` like
      # "1,20" (or a Range of line numbers) limits it to those lines.
      def blame(revision, path, range: nil)
        range = "#{range.begin},#{range.end}" if range.is_a?(Range)
        native.raw_blame(storage, relative_path, revision.to_s, path.to_s, range&.to_s)
      end

      # [ahead, behind]: commits of `a` not in `b`, and of `b` not in `a` (`git rev-list
      # --left-right --count a...b`); `max_count` (0: none) caps the walk.
      def diverging_count(a, b, max_count: 0)
        native.diverging_count(storage, relative_path, a.to_s, b.to_s, Integer(max_count))
      end

      # Lines added and removed by a commit and the files it changed (GitRPC::CommitStats).
      def commit_stats(revision)
        native.commit_stats(storage, relative_path, revision.to_s)
      end
    end
  end
end
