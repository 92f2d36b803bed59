# frozen_string_literal: true

module GitRPC
  class Repository
    # Diffs of commits and trees: diff (CommitDiff), changed_paths (FindChangedPaths).
    # Included into Repository: methods here use its storage, relative_path and native.
    # Struct classes the extension builds for these calls are declared here too.
    module Diffs
    end
  end
end
