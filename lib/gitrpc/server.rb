# frozen_string_literal: true

module GitRPC
  # A gitrpc server inside this Ruby process, serving on a socket and/or to in-process
  # clients. Keywords are `gitrpcd` config keys (see GitRPC::Config; a wrong key or value
  # raises ArgumentError here), plus hooks as callables: `pre_receive:`, `update:` and
  # `post_receive:`. They run for pushes and for operations (Repository#commit_files,
  # #merge, ...) alike, and get a GitRPC::HookEvent:
  #
  #   GitRPC::Server.start(storages: { "default" => dir }, listen: ["unix:#{sock}"],
  #                        pre_receive: lambda { |ev|
  #                          commit = ev.repository.find_commit(ev.changes.first.new_id)
  #                          raise GitRPC::PushRejected, "no WIP commits" if commit.subject.start_with?("WIP")
  #                        }) do |s|
  #     ...
  #   end
  #
  # The blocks run on one Ruby thread the server owns ("gitrpc hooks"), one event at a time
  # (the server's own threads only queue events for it). Returning normally accepts;
  # returning `false` refuses; raising GitRPC::PushRejected refuses with its message shown to
  # the pusher (and raised to the caller of an operation as PushRejected); any other
  # StandardError refuses without details (its class name only). post_receive runs after the
  # refs moved: its answer is ignored. In pre_receive and update, `ev.repository` reads
  # through the quarantine, so the new objects are visible. A block that runs longer than
  # `[hooks] timeout` (config `hooks: { timeout: "10s" }`, default 60 s) refuses the change;
  # the thread is busy until the block returns. A hook is given either here or as an
  # executable in the config (`hooks: { pre_receive: "/path" }`), not both.
  class Server
    HOOKS = %i[pre_receive update post_receive].freeze

    def self.start(**options)
      server = new(**options).start
      return server unless block_given?

      begin
        yield server
      ensure
        server.stop
      end
    end

    # The config Hash (frozen) the server starts from, and the hook callables (or nil).
    attr_reader :config, :pre_receive, :update, :post_receive

    def initialize(pre_receive: nil, update: nil, post_receive: nil, **config)
      { pre_receive: pre_receive, update: update, post_receive: post_receive }.each do |name, block|
        raise TypeError, "#{name} must respond to #call" unless block.nil? || block.respond_to?(:call)
      end
      @pre_receive = pre_receive
      @update = update
      @post_receive = post_receive
      @config = Config.check(Config.build(**config))
      @native = nil
      @hook_thread = nil
    end

    def start
      raise Error, "server already running" if running?

      @native = Native::Server.new(@config, @pre_receive, @update, @post_receive)
      if @pre_receive || @update || @post_receive
        native = @native
        @hook_thread = Thread.new { native.run_hooks }
        @hook_thread.name = "gitrpc hooks"
      end
      self
    end

    # @api private: the repository a hook event names (the extension calls this with an
    # in-process client reading through the event's quarantine).
    def self.hook_repository(native_client, storage, relative_path)
      Repository.new(Client.__send__(:wrap, native_client, owned_server: nil), storage, relative_path)
    end

    def running?
      !@native.nil? && @native.running?
    end

    # Where clients connect ("unix:/path" or "tcp://ip:port"); nil without listeners.
    def address
      addresses.first
    end

    def addresses
      @native ? @native.addresses : []
    end

    # A client that calls this server's handlers directly, without a socket.
    def client(timeout: Client::DEFAULT_TIMEOUT)
      raise UnavailableError, "server not started" unless @native

      Client.__send__(:wrap, @native.client(timeout&.to_f), owned_server: nil)
    end

    # Stop accepting calls, let running ones finish (up to `graceful_restart_timeout`
    # seconds), cancel the rest and remove the socket. True if it was running here (false in
    # a forked child, which leaves the parent's server alone).
    def stop
      return false unless @native

      stopped = @native.stop
      @hook_thread&.join
      @hook_thread = nil
      stopped
    end

    def inspect
      "#<GitRPC::Server #{running? ? address || "in-process" : "stopped"}>"
    end

    # The native server (for the specs).
    attr_reader :native
  end
end
