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

  # An entry of a tree: `type` is :blob, :tree or :commit (a submodule).
  TreeEntry = Struct.new(:type, :id, :mode, :size, :data)

  # One ref update of a push.
  RefChange = Struct.new(:old_id, :new_id, :ref) do
    def created? = /\A0+\z/.match?(old_id)
    def deleted? = /\A0+\z/.match?(new_id)
    def branch? = ref.start_with?("refs/heads/")
    def tag? = ref.start_with?("refs/tags/")
  end

  # What a pre-receive block decides on: the repository, the ref updates (a frozen Array of
  # RefChange) and push options (a frozen Array of Strings).
  PreReceive = Struct.new(:storage, :relative_path, :changes, :push_options)

  # A user an application authorised (GitRPC::SmartHTTP's `authorize` may return one):
  # `gl_id` ("user-7"), `username` and `gl_repository` ("project-1") reach the server's
  # hooks as GL_ID, GL_USERNAME and GL_REPOSITORY.
  User = Struct.new(:gl_id, :username, :name, :email, :gl_repository, keyword_init: true)
end
