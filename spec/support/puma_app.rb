# frozen_string_literal: true

require "open3"

# GitRPC::SmartHTTP under a real puma (Debian's), started as a child process on a loopback
# port with the config.ru below. The app's users: alice (may push), bob (may read);
# anonymous reads are allowed; wrong credentials get 401.
module PumaApp
  CONFIG_RU = <<~'RUBY'
    $LOAD_PATH.unshift ENV.fetch("GITRPC_LIB")
    require "gitrpc"

    client =
      if ENV["GITRPC_ADDRESS"]
        GitRPC::Client.new(ENV["GITRPC_ADDRESS"], timeout: 30)
      else
        require "json"
        hooks = ENV["GITRPC_HOOK"] ? { pre_receive: ENV["GITRPC_HOOK"] } : {}
        more = JSON.parse(ENV.fetch("GITRPC_CONFIG", "{}"), symbolize_names: true)
        GitRPC::Client.new(storages: { "default" => ENV.fetch("GITRPC_STORAGE") }, hooks: hooks, **more)
      end
    USERS = { "alice" => ["alicepw", :write], "bob" => ["bobpw", :read] }.freeze
    authorize = lambda do |request, _repository, action|
      auth = Rack::Auth::Basic::Request.new(request.env)
      next true if action == "git-upload-pack" && !auth.provided?
      raise GitRPC::Unauthorized, "HTTP Basic: Access denied" unless auth.provided? && auth.basic?

      user, password = auth.credentials
      raise GitRPC::Unauthorized unless USERS[user]&.first == password
      next false if action == "git-receive-pack" && USERS[user].last != :write

      GitRPC::User.new(gl_id: "user-#{user}", username: user, gl_repository: "project-1")
    end
    map("/git") { run GitRPC::SmartHTTP.new(client: client, authorize: authorize) }
  RUBY

  # A puma serving the app; `env` configures config.ru (GITRPC_ADDRESS for a remote server,
  # else GITRPC_STORAGE for an in-process one, GITRPC_HOOK for its pre-receive hook and
  # GITRPC_CONFIG, JSON, for more of its config keys).
  class Puma
    attr_reader :pid, :port, :log

    def initialize(dir, env)
      ru = File.join(dir, "config.ru")
      File.write(ru, CONFIG_RU)
      @log = File.join(dir, "puma.log")
      env = env.merge("GITRPC_LIB" => File.join(GitHelpers::ROOT, "lib"))
      @pid = Process.spawn(env, "puma", "-b", "tcp://127.0.0.1:0", "-t", "4:4", "-e", "production", ru,
                           chdir: dir, out: @log, err: @log, pgroup: true)
      @port = wait_for_port
    end

    def url(path = "")
      "http://127.0.0.1:#{port}/git/#{path}"
    end

    def stop
      Process.kill(:TERM, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end

    # Peak resident memory of puma so far (KiB).
    def hwm_kib
      File.read("/proc/#{pid}/status")[/^VmHWM:\s+(\d+)/, 1].to_i
    end

    # Live processes descended from puma whose command line matches `pattern`.
    def descendants(pattern)
      procs = Dir.glob("/proc/[0-9]*").filter_map do |d|
        stat = File.read("#{d}/stat") rescue next
        fields = stat[(stat.rindex(")") + 2)..].split
        next if fields[0] == "Z"

        cmd = File.read("#{d}/cmdline").tr("\0", " ").strip rescue next
        [File.basename(d).to_i, fields[1].to_i, cmd]
      end
      parent = procs.to_h { |p, pp, _| [p, pp] }
      procs.select do |p, _, cmd|
        next false unless cmd.match?(pattern)

        up = p
        up = parent[up] while up && up > 1 && up != pid
        up == pid
      end.map(&:last)
    end

    private

    def wait_for_port
      deadline = Time.now + 60
      loop do
        text = File.read(@log)
        port = text[%r{Listening on http://127\.0\.0\.1:(\d+)}, 1]
        return port.to_i if port

        raise "puma exited: #{text}" if Process.waitpid(pid, Process::WNOHANG)
        raise "puma did not start: #{text}" if Time.now > deadline

        sleep 0.05
      end
    end
  end

  # git as an HTTP client (no credential prompts; credentials go in URLs).
  def http_git(dir, *args, env: {})
    Open3.capture3(GitHelpers::GIT_ENV.merge("GIT_TERMINAL_PROMPT" => "0", "GIT_ASKPASS" => "/bin/false").merge(env),
                   "git", *args, chdir: dir)
  end

  # A URL with credentials.
  def as(user, password, url)
    url.sub("http://", "http://#{user}:#{password}@")
  end
end
