# frozen_string_literal: true

module GitRPC
  class Repository
    # Writes (OperationService): commits of file edits, branches, tags, merges, cherry-picks,
    # reverts, squashes. Each one runs the server's hooks (pre-receive, update, then
    # post-receive) with the new objects quarantined until the hooks accept; a hook's
    # refusal raises GitRPC::PushRejected (its message is the hook's), a conflict
    # GitRPC::MergeConflictError (#conflicting_paths), a moved branch (expected_old_oid)
    # GitRPC::FailedPreconditionError. `user:` is a GitRPC::User (or a Hash of its fields):
    # its name, email and timezone make the commit's author and committer. `timestamp:` (a
    # Time or Integer seconds) dates the commit (default: now).
    #
    #   repo.commit_files(branch: "main", message: "Add x", user: user,
    #                     actions: [{ action: :create, path: "x.txt", content: "x\n" }])
    #   # => #<struct GitRPC::BranchUpdate commit_id="9f1e…", repo_created=false, branch_created=false>
    module Operations
      ACTIONS = %i[create create_dir update move delete chmod].freeze

      # Commit file actions on `branch` (created from `start_branch` / `start_sha` if it does
      # not exist). Each action is a Hash:
      #   { action: :create, path:, content:, executable: false, base64: false }
      #   { action: :create_dir, path: }      { action: :update, path:, content: }
      #   { action: :move, path:, previous_path:, content: nil }   (nil: keep the content)
      #   { action: :delete, path: }          { action: :chmod, path:, executable: }
      # Returns a GitRPC::BranchUpdate.
      def commit_files(branch:, message:, user:, actions:, start_branch: nil, start_sha: nil,
                       start_repository: nil, expected_old_oid: nil, force: false,
                       author_name: nil, author_email: nil, timestamp: nil)
        opts = { start_branch: start_branch&.to_s, start_sha: start_sha&.to_s,
                 start_repository: repository_arg(start_repository), expected_old_oid: expected_old_oid&.to_s,
                 force: force ? true : false, author_name: author_name&.to_s, author_email: author_email&.to_s,
                 timestamp: seconds(timestamp) }
        native.commit_files([storage, relative_path, User.from(user).to_native, branch.to_s, message.to_s],
                            Array(actions).map { |a| file_action(a) }, opts)
      end

      # Create branch `name` (short name) at `start_point` (a revision); the new
      # GitRPC::Branch.
      def create_branch(name, start_point, user:)
        native.create_branch([storage, relative_path, User.from(user).to_native], name.to_s, start_point.to_s)
      end

      # Move branch `name` from `old_id` to `new_id` (both full object ids).
      def update_branch(name, new_id, old_id, user:)
        hook_refusal do
          native.update_branch([storage, relative_path, User.from(user).to_native], name.to_s, new_id.to_s, old_id.to_s)
        end
        nil
      end

      # Delete branch `name`; with `expected_old_oid`, only if it still points there.
      def delete_branch(name, user:, expected_old_oid: nil)
        native.delete_ref([storage, relative_path, User.from(user).to_native], :branch, name.to_s,
                          expected_old_oid&.to_s)
        nil
      end

      # Create tag `name` at `target` (a revision): annotated if `message` has text,
      # lightweight otherwise. Returns a GitRPC::Tag.
      def create_tag(name, target, user:, message: nil, timestamp: nil)
        native.create_tag([storage, relative_path, User.from(user).to_native], name.to_s, target.to_s,
                          message&.to_s, seconds(timestamp))
      end

      def delete_tag(name, user:, expected_old_oid: nil)
        hook_refusal do
          native.delete_ref([storage, relative_path, User.from(user).to_native], :tag, name.to_s,
                            expected_old_oid&.to_s)
        end
        nil
      end

      # Merge `source_sha` into branch `into`, in two phases: the server computes the merge
      # commit (nothing in the repository yet), the block gets its id and decides; true (or
      # no block) applies it (the hooks run, the branch moves) and returns a
      # GitRPC::BranchUpdate, false drops it and returns nil.
      def merge(source_sha, into:, message:, user:, expected_old_oid: nil, squash: false, timestamp: nil)
        opts = { expected_old_oid: expected_old_oid&.to_s, squash: squash ? true : false, timestamp: seconds(timestamp) }
        proposal = native.merge_start([storage, relative_path, User.from(user).to_native],
                                      [source_sha.to_s, into.to_s, message.to_s], opts)
        if !block_given? || yield(proposal.commit_id)
          proposal.apply
        else
          proposal.abort
          nil
        end
      end

      # Fast-forward `branch` to `commit_id`; NotAncestor (FailedPreconditionError) if it
      # is not a descendant. Returns a GitRPC::BranchUpdate.
      def ff_merge(commit_id, branch:, user:, expected_old_oid: nil)
        native.ff_branch([storage, relative_path, User.from(user).to_native], branch.to_s, commit_id.to_s,
                         expected_old_oid&.to_s)
      end

      # Apply `commit_id`'s change on `branch` (from `start_branch` if given) as a new commit.
      # `dry_run: true` computes the commit without moving the branch.
      def cherry_pick(commit_id, branch:, message:, user:, **options)
        pick_revert(:cherry_pick, commit_id, branch, message, user, options)
      end

      # Undo `commit_id`'s change on `branch` as a new commit.
      def revert(commit_id, branch:, message:, user:, **options)
        pick_revert(:revert, commit_id, branch, message, user, options)
      end

      # One commit with the changes of `start_sha..end_sha` (on top of `start_sha`), not on
      # any branch; its id.
      def squash(start_sha, end_sha, message:, user:, author: nil, timestamp: nil)
        opts = { message: message.to_s, timestamp: seconds(timestamp),
                 author: author && User.from(author).to_native }
        native.write_commit([storage, relative_path, User.from(user).to_native], :squash,
                            [start_sha.to_s, end_sha.to_s, ""], opts)
      end

      # Merge `source_sha` into `first_parent_ref` and write the merge commit to `target_ref`
      # (a full ref name, e.g. "refs/merge-requests/1/merge"); its id.
      def merge_to_ref(source_sha, first_parent_ref:, target_ref:, message:, user:, expected_old_oid: nil,
                       timestamp: nil)
        opts = { message: message.to_s, timestamp: seconds(timestamp), expected_old_oid: expected_old_oid&.to_s }
        native.write_commit([storage, relative_path, User.from(user).to_native], :merge_to_ref,
                            [source_sha.to_s, first_parent_ref.to_s, target_ref.to_s], opts)
      end

      private

      PICK_OPTIONS = %i[start_branch start_repository dry_run expected_old_oid author_name author_email
                        timestamp].freeze

      def pick_revert(kind, commit_id, branch, message, user, options)
        unknown = options.keys - PICK_OPTIONS
        raise ArgumentError, "unknown keyword: #{unknown.first.inspect}" unless unknown.empty?

        opts = { start_branch: options[:start_branch]&.to_s, start_repository: repository_arg(options[:start_repository]),
                 dry_run: options[:dry_run] ? true : false, expected_old_oid: options[:expected_old_oid]&.to_s,
                 author_name: options[:author_name]&.to_s, author_email: options[:author_email]&.to_s,
                 timestamp: seconds(options[:timestamp]) }
        native.pick_revert([storage, relative_path, User.from(user).to_native], kind,
                           [commit_id.to_s, branch.to_s, message.to_s], opts)
      end

      def file_action(a)
        raise TypeError, "each action must be a Hash, not #{a.class}" unless a.is_a?(Hash)

        kind = a.fetch(:action) { raise ArgumentError, "an action needs action:" }.to_sym
        raise ArgumentError, "unknown action #{kind.inspect} (#{ACTIONS.join(", ")})" unless ACTIONS.include?(kind)

        content = a[:content]&.to_s
        content = decode64(content, a[:path]) if content && a[:base64]
        [kind, a.fetch(:path) { raise ArgumentError, "#{kind} needs path:" }.to_s, a[:previous_path]&.to_s,
         content, a[:executable] ? true : false]
      end

      def decode64(content, path)
        content.delete("\r\n").unpack1("m0")
      rescue ArgumentError
        raise ArgumentError, "invalid base64 content for #{path.to_s.inspect}"
      end

      def repository_arg(repo)
        case repo
        when nil then nil
        when Repository then [repo.storage, repo.relative_path]
        else raise TypeError, "start_repository: must be a GitRPC::Repository"
        end
      end

      def seconds(time)
        case time
        when nil then nil
        when Time then time.to_i
        when Integer then time
        else raise TypeError, "timestamp: must be a Time or Integer seconds"
        end
      end

      # UserUpdateBranch and UserDeleteTag answer a hook's refusal in their response (as
      # Gitaly does); the client raises it as PERMISSION_DENIED without a detail.
      def hook_refusal
        yield
      rescue PushRejected
        raise
      rescue PermissionDeniedError => e
        raise PushRejected.new(e.details, code: e.code)
      end
    end
  end
end
