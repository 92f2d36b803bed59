# frozen_string_literal: true

module GitRPC
  # A local branch: full ref name and the commit it points at.
  Branch = Struct.new(:name, :target_id)

  # Author or committer of a commit. `time` carries the signature's own UTC offset.
  Signature = Struct.new(:name, :email, :time, :timezone) do
    def self.from_native(a)
      return nil unless a

      name, email, secs, tz = a
      offset = tz =~ /\A([+-])(\d\d)(\d\d)\z/ ? "#{$1}#{$2}:#{$3}" : "+00:00"
      new(name, email, Time.at(secs, in: offset), tz)
    end
  end

  Commit = Struct.new(:id, :subject, :body, :author, :committer, :parent_ids, :tree_id) do
    def self.from_native(c)
      return nil unless c

      id, subject, body, author, committer, parents, tree = c
      new(id, subject, body, Signature.from_native(author), Signature.from_native(committer),
          parents, tree)
    end
  end

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

  # What a pre-receive block decides on: the repository, the ref updates and push options.
  PreReceive = Struct.new(:storage, :relative_path, :changes, :push_options) do
    def self.build(storage, relative_path, changes, push_options)
      new(storage, relative_path, changes.map { |c| RefChange.new(*c) }.freeze, push_options.freeze)
    end
  end
end
