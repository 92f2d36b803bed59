# frozen_string_literal: true

module GitRPC
  # A gitrpc server inside this Ruby process, serving on a socket and/or to in-process
  # clients. Keywords are `gitrpcd` config keys (see GitRPC::Config; a wrong key or value
  # raises ArgumentError here), plus `pre_receive:`, a callable deciding on pushes:
  #
  #   GitRPC::Server.start(storages: { "default" => dir }, listen: ["unix:#{sock}"],
  #                        pre_receive: ->(push) { raise GitRPC::PushRejected, "frozen" }) do |s|
  #     ...
  #   end
  #
  # The pre-receive block runs on a Ruby thread the server starts ("gitrpc pre-receive"), one
  # push at a time. Returning normally accepts the push; returning `false` rejects it;
  # raising GitRPC::PushRejected rejects it with its message shown to the pusher; any other
  # StandardError rejects it without details.
  class Server
    def self.start(**options)
      server = new(**options).start
      return server unless block_given?

      begin
        yield server
      ensure
        server.stop
      end
    end

    # The config Hash (frozen) the server starts from, and the pre-receive callable.
    attr_reader :config, :pre_receive

    def initialize(pre_receive: nil, **config)
      raise TypeError, "pre_receive must respond to #call" unless pre_receive.nil? || pre_receive.respond_to?(:call)

      @pre_receive = pre_receive
      @config = Config.check(Config.build(**config))
      @native = nil
      @hook_thread = nil
    end

    def start
      raise Error, "server already running" if running?

      @native = Native::Server.new(@config, @pre_receive)
      if @pre_receive
        native = @native
        @hook_thread = Thread.new { native.run_hooks }
        @hook_thread.name = "gitrpc pre-receive"
      end
      self
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
