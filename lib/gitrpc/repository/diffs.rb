# frozen_string_literal: true

module GitRPC
  # One file of a diff (CommitDiff): paths, blob ids and modes of both sides, the patch
  # (hunks, without git's header lines; a binary String), and the limit flags.
  Diff = Struct.new(:from_path, :to_path, :from_id, :to_id, :old_mode, :new_mode, :binary,
                    :patch, :overflow_marker, :collapsed, :too_large, :lines_added, :lines_removed) do
    # The path after the change.
    def path
      to_path
    end

    def binary?
      binary
    end

    # Left out as larger than max_patch_bytes (the patch is empty).
    def too_large?
      too_large
    end

    # Left out by the safe limits (collapse_diffs; the patch is empty).
    def collapsed?
      collapsed
    end

    # The limits ended the diff here.
    def overflow?
      overflow_marker
    end
  end

  # A path a commit (or a tree comparison) changed (FindChangedPaths): status is :added,
  # :modified, :deleted, :type_change, :copied or :renamed; old_path only for renames.
  ChangedPath = Struct.new(:status, :path, :old_path, :old_mode, :new_mode, :old_id, :new_id, :commit_id)

  class Repository
    # Diffs of commits and trees: diff (CommitDiff), changed_paths (FindChangedPaths).
    # Included into Repository: methods here use its storage, relative_path and native.
    module Diffs
      DIFF_LIMITS = %i[max_files max_lines max_bytes safe_max_files safe_max_lines safe_max_bytes
                       max_patch_bytes].freeze

      # The files changed between `from` and `to` (commits) as a lazy Enumerator of
      # GitRPC::Diff, read as the server streams them. `paths` limits the diff to those
      # pathspecs; `limits` (Gitaly's: max_files, max_lines, max_bytes, max_patch_bytes,
      # safe_max_*) apply with `enforce_limits: true` (max_*) or `collapse_diffs: true`
      # (safe_*); `max_patch_bytes_for_file_extension: { ".md" => 1000 }`;
      # `whitespace: :ignore | :ignore_all`; `word_diff: true`.
      def diff(from, to, paths: nil, enforce_limits: false, collapse_diffs: false, collect_all_paths: false,
               whitespace: nil, word_diff: false, max_patch_bytes_for_file_extension: nil, **limits)
        unknown = limits.keys - DIFF_LIMITS
        raise ArgumentError, "unknown keywords: #{unknown.join(", ")}" unless unknown.empty?
        unless whitespace.nil? || %i[ignore ignore_all].include?(whitespace)
          raise ArgumentError, "whitespace must be nil, :ignore or :ignore_all"
        end

        opts = limits.transform_values { |v| Integer(v) }.merge(
          paths: Array(paths).map(&:to_s), enforce_limits: enforce_limits ? true : false,
          collapse_diffs: collapse_diffs ? true : false, collect_all_paths: collect_all_paths ? true : false,
          whitespace: whitespace&.to_s, word_diff: word_diff ? true : false,
          max_patch_bytes_for_file_extension: max_patch_bytes_for_file_extension&.to_h do |k, v|
            [k.to_s, Integer(v)]
          end
        ).freeze
        native = self.native
        storage = self.storage
        rel = relative_path
        Enumerator.new do |y|
          Client.drain(native.commit_diff(storage, rel, from.to_s, to.to_s, opts), y) { |d| d }
        end
      end

      # The paths changed (Array of GitRPC::ChangedPath): by `revision` against its parents
      # (one entry per parent for merges), or between the trees of `revision` and `to` when
      # `to` is given; `find_renames: true` reports renames (with old_path).
      def changed_paths(revision, to = nil, find_renames: false)
        commits = to.nil? ? [revision.to_s] : []
        trees = to.nil? ? [] : [[revision.to_s, to.to_s]]
        native.changed_paths(storage, relative_path, commits, trees, find_renames ? true : false)
      end
    end
  end
end
