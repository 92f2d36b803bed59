# frozen_string_literal: true

module GitRPC
  # One match of a content search (SearchFilesByContent): a block of lines of one file as
  # `git grep` prints it, the matching lines with up to two lines of context around them
  # (nearby matches share a block). `line_number` is the block's first line's number, `data`
  # its text (lines joined, each ending in "\n"), `lines` an Array of `[number, text]`.
  ContentMatch = Struct.new(:path, :line_number, :data, :lines)

  # The license of a repository (FindLicense): short_name is the lower-case SPDX id as GitLab
  # keys licenses ("mit", "apache-2.0", "gpl-2.0", "gpl-3.0"), or "other" for a license file
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
      # --- archive, search_files, branches_containing, tags_containing ---

      ARCHIVE_FORMATS = %i[tar tar_gz tar_bz2 zip].freeze

      # An archive of `revision`'s tree (GetArchive), read as the server streams it and never
      # held whole: with a block, yields each piece (a binary String) as it arrives; with
      # `to:` (anything responding to `write`: a File, a socket, a StringIO, a Rack body),
      # writes the pieces to it and returns the number of bytes; else a lazy Enumerator of
      # the pieces (the call starts when iteration does; stopping early cancels it).
      # `format`: :tar, :tar_gz, :tar_bz2 or :zip. `prefix`: the directory every entry goes
      # under (nil: entries start at "/", as Gitaly writes them). `path`: only this directory;
      # `exclude`: paths left out; `elide_path: true` makes `path` the archive's root.
      def archive(revision, format: :tar_gz, prefix: nil, path: nil, exclude: [], elide_path: false, to: nil, &block)
        format = format.to_sym if format.is_a?(String)
        unless ARCHIVE_FORMATS.include?(format)
          raise ArgumentError,
                "format must be one of #{ARCHIVE_FORMATS.map(&:inspect).join(", ")}, not #{format.inspect}"
        end
        raise ArgumentError, "to: must respond to write" if to && !to.respond_to?(:write)
        raise ArgumentError, "give a block or to:, not both" if to && block

        opts = { format: format.to_s, prefix: prefix.to_s, path: path.to_s, exclude: Array(exclude).map(&:to_s),
                 elide_path: elide_path ? true : false }.freeze
        native = self.native
        args = [storage, relative_path, revision.to_s, opts].freeze
        if to
          written = 0
          Files.each_archive_piece(native, args) do |piece|
            to.write(piece)
            written += piece.bytesize
          end
          written
        elsif block
          Files.each_archive_piece(native, args, &block)
          nil
        else
          Enumerator.new { |y| Files.each_archive_piece(native, args) { |piece| y << piece } }
        end
      end

      # Calls the block with each piece of an archive; the call is cancelled if the block
      # raises or breaks.
      def self.each_archive_piece(native, args)
        stream = native.archive(*args)
        begin
          while (batch = stream.next_batch)
            batch.each { |piece| yield piece }
          end
        ensure
          stream.close
        end
      end

      # Files of `ref`'s tree, by name or by content; give exactly one of:
      # - `name:` a Regexp: the paths (Strings) it matches, in tree order, at most `limit`
      #   after skipping `offset` (SearchFilesByName's filter; the server's regex engine,
      #   Rust's `regex` syntax, evaluates the Regexp's source, with its i, m and x flags;
      #   `path:` restricts the search to a directory); or a String: the paths under that
      #   directory or equal to it (a pathspec; "." for all).
      # - `content:` a Perl-compatible regex (a String or a Regexp's source), matched
      #   case-insensitively by `git grep` on the server: an Array of GitRPC::ContentMatch
      #   (binary files skipped; a `ref` that doesn't resolve finds nothing).
      def search_files(name: nil, content: nil, ref: "HEAD", limit: nil, offset: 0, path: nil)
        raise ArgumentError, "give exactly one of name: and content:" unless name.nil? ^ content.nil?
        raise ArgumentError, "limit must not be negative" if limit && Integer(limit).negative?
        raise ArgumentError, "offset must not be negative" if Integer(offset).negative?

        if content
          raise ArgumentError, "limit:, offset: and path: are for name: searches" if limit || offset != 0 || path

          query = content.is_a?(Regexp) ? content.source : content.to_s
          return native.search_files_by_content(storage, relative_path, ref.to_s, query)
        end

        opts = if name.is_a?(Regexp)
                 { query: path.nil? ? "." : path.to_s, filter: Files.regex_source(name) }
               else
                 raise ArgumentError, "path: is for a Regexp name:" if path

                 { query: name.to_s.sub(%r{\A/+}, ""), filter: "" }
               end
        native.search_files_by_name(storage, relative_path, ref.to_s,
                                    opts.merge(offset: Integer(offset), limit: limit ? Integer(limit) : 0).freeze)
      end

      # A Regexp as the server's regex engine takes it: its flags inline.
      def self.regex_source(regexp)
        flags = { Regexp::IGNORECASE => "i", Regexp::MULTILINE => "s", Regexp::EXTENDED => "x" }
                .filter_map { |bit, f| f if regexp.options & bit != 0 }.join
        flags.empty? ? regexp.source : "(?#{flags})#{regexp.source}"
      end

      # Names of the branches (without "refs/heads/") whose history contains the commit
      # `sha` (a full object id), in name order; at most `limit` (0: all).
      def branches_containing(sha, limit: 0)
        limit = Integer(limit)
        raise ArgumentError, "limit must not be negative" if limit.negative?

        native.branch_names_containing(storage, relative_path, sha.to_s, limit)
      end

      # Names of the tags (without "refs/tags/") whose history contains the commit `sha`.
      def tags_containing(sha, limit: 0)
        limit = Integer(limit)
        raise ArgumentError, "limit must not be negative" if limit.negative?

        native.tag_names_containing(storage, relative_path, sha.to_s, limit)
      end

      # --- end of archive, search_files, branches_containing, tags_containing ---

      # The license of the tree HEAD points to, from its root's license files (LICENSE,
      # COPYING, LICENSE.md, ...; READMEs are not read): a GitRPC::License, or nil if there is
      # no license file (or the repository is empty).
      def license
        native.find_license(storage, relative_path)
      end
    end
  end
end
