# frozen_string_literal: true

module GitRPC
  # The license of a repository (FindLicense): short_name is the lower-case SPDX id as GitLab
  # keys licenses ("mit", "apache-2.0", "gpl-2.0", "gpl-3.0+"), or "other" for a license file
  # that matches no known license; name ("MIT License"), url, path (the file it is in) and
  # nickname ("GNU GPLv2"; often "").
  License = Struct.new(:short_name, :name, :url, :path, :nickname) do
    # A license file whose text matched no known license.
    def other?
      short_name == "other"
    end
  end

  class Repository
    # Files and refs: archive, search_files, license, branches_containing, tags_containing.
    # Included into Repository: methods here use its storage, relative_path and native.
    # Struct classes the extension builds for these calls are declared here too.
    module Files
      # The license of the tree HEAD points to, from its root's license files (LICENSE,
      # COPYING, LICENSE.md, ...; READMEs are not read): a GitRPC::License, or nil if there is
      # no license file (or the repository is empty).
      def license
        native.find_license(storage, relative_path)
      end
    end
  end
end
