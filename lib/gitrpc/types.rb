# frozen_string_literal: true

module GitRPC
  # The values calls return. The extension builds them (positional, in member order).

  # A local branch: full ref name and the commit it points at.
  Branch = Struct.new(:name, :target_id)

  # Author or committer of a commit. `time` carries the signature's own UTC offset;
  # `timezone` is that offset as git recorded it ("+0130").
  Signature = Struct.new(:name, :email, :time, :timezone)

  Commit = Struct.new(:id, :subject, :body, :author, :committer, :parent_ids, :tree_id)

  # A blob's content; `size` is the whole blob's size even if `data` was limited.
  Blob = Struct.new(:id, :size, :data)

  # An entry of a tree: `type` is :blob, :tree or :commit (a submodule). A directory listing
  # (Repository#tree) sets `path` (and `last_commit` if asked), not `size` and `data`.
  TreeEntry = Struct.new(:type, :id, :mode, :size, :data, :path, :last_commit)

  # One ref update of a push.
  RefChange = Struct.new(:old_id, :new_id, :ref) do
    def created? = /\A0+\z/.match?(old_id)
    def deleted? = /\A0+\z/.match?(new_id)
    def branch? = ref.start_with?("refs/heads/")
    def tag? = ref.start_with?("refs/tags/")
  end

  # Who makes a change. Operations send it as the request's `User` (name, email and
  # timezone, an IANA name like "Europe/Paris", make the commit's author and committer);
  # hooks get it back on their event (for pushes: gl_id and gl_username, what the transport
  # passed). GitRPC::SmartHTTP's `authorize` may return one: its `gl_id` ("user-7"),
  # `gl_username` and `gl_repository` ("project-1") reach the server's hooks as GL_ID,
  # GL_USERNAME and GL_REPOSITORY. `username:` is accepted for `gl_username`.
  User = Struct.new(:gl_id, :gl_username, :name, :email, :timezone, :gl_repository,
                    keyword_init: true) do
    def initialize(username: nil, **fields)
      fields[:gl_username] ||= username
      super(**fields)
    end

    def username = gl_username

    # @api private: what the extension takes.
    def to_native
      [gl_id, gl_username, name, email, timezone].map { |v| v.nil? ? nil : v.to_s }
    end

    # A User from a User or a Hash of its fields.
    def self.from(value)
      case value
      when User then value
      when Hash then new(**value.transform_keys(&:to_sym))
      else raise TypeError, "user: must be a GitRPC::User or a Hash, not #{value.class}"
      end
    end
  end

  # What a hook block decides on. `kind` is :pre_receive, :update or :post_receive;
  # `repository` a GitRPC::Repository that, in pre-receive and update, reads through the
  # quarantine (the pushed or new objects are visible: `event.repository.find_commit(id)`);
  # `changes` a frozen Array of RefChange (exactly one for :update); `push_options` a frozen
  # Array of Strings; `user` a GitRPC::User; `protocol` "web" (operations), "ssh" or "http".
  HookEvent = Struct.new(:kind, :repository, :changes, :push_options, :user, :protocol) do
    def storage = repository.storage
    def relative_path = repository.relative_path

    # The change an :update hook decides on.
    def change = changes.first
  end

  # The event a pre-receive block gets (before operations had hooks, only this one existed).
  PreReceive = HookEvent

  # The result of an operation that moved a branch: the new commit, whether the repository
  # had no branch before, whether the branch was created.
  BranchUpdate = Struct.new(:commit_id, :repo_created, :branch_created) do
    def repo_created? = repo_created
    def branch_created? = branch_created
  end

  # A tag: `id` is the tag object's id (annotated) or the target's (lightweight);
  # `target_id` the commit it points at; `message` empty for a lightweight tag.
  Tag = Struct.new(:name, :id, :target_id, :message) do
    def annotated? = id != target_id
  end
end
