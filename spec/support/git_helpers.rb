# frozen_string_literal: true

require "fileutils"
require "open3"
require "rbconfig"
require "tmpdir"

# Real repositories built with the git CLI in temp dirs.
module GitHelpers
  ROOT = File.expand_path("../..", __dir__)
  GIT_ENV = {
    "GIT_CONFIG_GLOBAL" => "/dev/null", "GIT_CONFIG_NOSYSTEM" => "1",
    "GIT_AUTHOR_NAME" => "Ada Lovelace", "GIT_AUTHOR_EMAIL" => "ada@example.com",
    "GIT_COMMITTER_NAME" => "Charles Babbage", "GIT_COMMITTER_EMAIL" => "charles@example.com",
    "GIT_AUTHOR_DATE" => "1700000000 +0130", "GIT_COMMITTER_DATE" => "1700000100 -0800"
  }.freeze

  module_function

  def git(dir, *args, env: {})
    out, err, status = Open3.capture3(GIT_ENV.merge(env), "git", *args, chdir: dir)
    raise "git #{args.join(" ")} failed: #{err}" unless status.success?

    out
  end

  # A temp dir removed after the block.
  def in_tmpdir(&block)
    Dir.mktmpdir("gitrpc-spec", &block)
  end

  # A bare repository at storage/rel with main: c1 -- c2 -- c3 and feature (from c1), a file
  # tree (README.md, src/lib.rb, docs/a b.txt). Returns a Hash of commit ids.
  def make_repo(storage, rel)
    path = File.join(storage, rel)
    FileUtils.mkdir_p(path)
    git(path, "init", "--bare", "-q", "-b", "main")
    work = Dir.mktmpdir("gitrpc-work")
    begin
      git(work, "init", "-q", "-b", "main")
      write = ->(f, s) { FileUtils.mkdir_p(File.dirname(File.join(work, f))); File.write(File.join(work, f), s) }
      write.("README.md", "hello\n")
      git(work, "add", ".")
      git(work, "commit", "-qm", "c1: initial commit")
      c1 = git(work, "rev-parse", "HEAD").strip
      write.("src/lib.rb", "def answer = 42\n")
      git(work, "add", ".")
      git(work, "commit", "-qm", "c2: add lib\n\nThe library answers.")
      c2 = git(work, "rev-parse", "HEAD").strip
      write.("docs/a b.txt", "spaced name\n")
      git(work, "add", ".")
      git(work, "commit", "-qm", "c3: docs")
      c3 = git(work, "rev-parse", "HEAD").strip
      git(work, "checkout", "-q", "-b", "feature", c1)
      write.("feature.txt", "feature\n")
      git(work, "add", ".")
      git(work, "commit", "-qm", "f1: feature")
      f1 = git(work, "rev-parse", "HEAD").strip
      git(work, "push", "-q", path, "main", "feature")
      { c1: c1, c2: c2, c3: c3, f1: f1, path: path }
    ensure
      FileUtils.rm_rf(work)
    end
  end

  # A repository where every git that looks up an object blocks: objects/info/alternates is
  # a FIFO nobody writes. Calls on it hang until cancelled.
  def make_hanging_repo(storage, rel)
    path = File.join(storage, rel)
    FileUtils.mkdir_p(path)
    git(path, "init", "--bare", "-q")
    File.mkfifo(File.join(path, "objects/info/alternates"))
    path
  end

  # Live git processes started by this process's servers (children of this pid), except the
  # pooled `cat-file` processes, which live on by design until their pool drops them.
  def git_children(pid = Process.pid)
    Dir.glob("/proc/[0-9]*").filter_map do |d|
      stat = File.read("#{d}/stat") rescue next
      fields = stat[(stat.rindex(")") + 2)..].split
      next unless fields[1].to_i == pid && fields[0] != "Z"

      cmd = File.read("#{d}/cmdline").tr("\0", " ").strip rescue next
      cmd if cmd.include?("git") && !cmd.include?("cat-file")
    end
  end

  # The gitrpc-ssh helper (built by cargo if missing).
  def gitrpc_ssh
    env = ENV["GITRPC_SSH"]
    return env if env && File.executable?(env)

    %w[debug release].each do |profile|
      p = File.join(ROOT, "target", profile, "gitrpc-ssh")
      return p if File.executable?(p)
    end
    system("cargo", "build", "--quiet", "--locked", "-p", "gitrpcd", "--bin", "gitrpc-ssh", chdir: ROOT) ||
      raise("could not build gitrpc-ssh")
    File.join(ROOT, "target", "debug", "gitrpc-ssh")
  end

  # git with GIT_SSH_COMMAND through gitrpc-ssh to `address`.
  def git_via(address, dir, *args)
    Open3.capture3(GIT_ENV.merge("GIT_SSH_COMMAND" => "#{gitrpc_ssh} --address #{address}"),
                   "git", *args, chdir: dir)
  end

  # Run Ruby code in a fresh interpreter with lib/ loaded; returns [stdout+stderr, status].
  def ruby_child(code, timeout: 120)
    out = +""
    status = nil
    Open3.popen2e(RbConfig.ruby, "-I", File.join(ROOT, "lib"), "-e", code) do |_in, io, wait|
      reader = Thread.new { out << io.read }
      unless wait.join(timeout)
        Process.kill(:KILL, wait.pid)
        wait.join
      end
      reader.join
      status = wait.value
    end
    [out, status]
  end
end

# Minimal protobuf encoding for the raw-call specs (what the gitaly gem's classes would do).
module Proto
  module_function

  def varint(n)
    out = +"".b
    loop do
      byte = n & 0x7f
      n >>= 7
      out << (n.zero? ? byte : byte | 0x80).chr
      break if n.zero?
    end
    out
  end

  def bytes(field, s)
    varint((field << 3) | 2) + varint(s.bytesize) + s.b
  end

  def repository(storage, path)
    bytes(2, storage) + bytes(3, path)
  end

  # Fields of a message as { number => [values] } (varints and length-delimited only).
  def decode(buf)
    out = Hash.new { |h, k| h[k] = [] }
    io = StringIO.new(buf.b)
    until io.eof?
      key = read_varint(io)
      case key & 7
      when 0 then out[key >> 3] << read_varint(io)
      when 2 then out[key >> 3] << io.read(read_varint(io))
      else raise "unsupported wire type #{key & 7}"
      end
    end
    out
  end

  def read_varint(io)
    n = 0
    shift = 0
    loop do
      b = io.readbyte
      n |= (b & 0x7f) << shift
      shift += 7
      return n if b < 0x80
    end
  end
end

require "stringio"
