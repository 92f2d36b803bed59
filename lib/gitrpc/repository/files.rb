# frozen_string_literal: true

module GitRPC
  class Repository
    # Files and refs: archive, search_files, license, branches_containing, tags_containing.
    # Included into Repository: methods here use its storage, relative_path and native.
    # Struct classes the extension builds for these calls are declared here too.
    module Files
    end
  end
end
