# frozen_string_literal: true

module GitRPC
  class Repository
    # History: commits (FindCommits), blame, tree(with_last_commits:), diverging_count.
    # Included into Repository: methods here use its storage, relative_path and native.
    # Struct classes the extension builds for these calls are declared here too.
    module History
    end
  end
end
