# frozen_string_literal: true

module GitRPC
  # A client of a gitrpc (or Gitaly) server: remote over a socket, or in-process.
  #
  #   GitRPC::Client.new("unix:/tmp/gitrpc.sock", timeout: 10)     # remote
  #   GitRPC::Client.new("tls://gitaly-1:9999,tls://gitaly-2:9999", token: ENV["GITALY_TOKEN"])
  #   GitRPC::Client.new(storages: { "default" => "/srv/repos" })  # in-process server
  #   GitRPC::Client.new(servers: { "default" => "unix:/run/a.sock",     # storage routing
  #                                 "shard-2" => "tls://g2:9999,tls://g3:9999",
  #                                 "shard-3" => { address: "tls://g4:9999", token: "..." },
  #                                 "local" => server }, token: ...)   # a GitRPC::Server here
  #
  # With `servers:`, each call goes to the servers of its repository's storage (balanced and
  # retried within that storage's list); a storage not in the Hash raises
  # InvalidArgumentError (`storage not found: "name"`) before anything is sent, and a server
  # that is down fails only its storage's calls. A GitRPC::Server value serves its storage in
  # this process; another server can reach it (ReplicateRepository's source, say) only if it
  # also listens. `address`, if given too, serves the calls that name no repository.
  #
  # A remote address may list several servers of the same storages, comma-separated: each
  # call goes to the one with the fewest calls in flight. `token:` is the servers' `[auth]
  # token` (each call carries a v2 token made from it); `tls_ca_file:` a PEM file of extra
  # certificate authorities for tls:// addresses. Read-only calls refused with
  # RESOURCE_EXHAUSTED or failing with UNAVAILABLE are retried `retries:` times with
  # exponential back-off and jitter, within the deadline.
  #
  # Every call blocks the calling thread only: the GVL is released while waiting, and
  # Timeout.timeout, Thread#raise, Thread#kill and Ctrl-C interrupt it (the server then
  # cancels the call and kills its git processes). `timeout` is the default deadline in
  # seconds for each call (nil: none). Safe to share between threads, and usable after fork
  # (a remote client reconnects in the child).
  class Client
    DEFAULT_TIMEOUT = 30

    DEFAULT_RETRIES = 2

    def initialize(address = nil, timeout: DEFAULT_TIMEOUT, token: nil, tls_ca_file: nil,
                   retries: DEFAULT_RETRIES, servers: nil, **server_config)
      if servers
        raise ArgumentError, "give servers: or server config keywords, not both" unless server_config.empty?

        remotes, locals = Client.routes(servers)
        @routed = true
        @native = Native::Client.connect_routed(address&.to_s, remotes, locals, timeout&.to_f, token&.to_s,
                                                tls_ca_file&.to_s, Integer(retries))
      elsif address
        raise ArgumentError, "give an address or server config keywords, not both" unless server_config.empty?

        @native = Native::Client.connect(address.to_s, timeout&.to_f, token&.to_s, tls_ca_file&.to_s,
                                         Integer(retries))
      else
        raise ArgumentError, "give an address, or storages: for an in-process server" if server_config.empty?

        @server = Server.new(**server_config).start
        @native = @server.native.client(timeout&.to_f)
      end
    end

    def self.wrap(native, owned_server:)
      client = allocate
      client.instance_variable_set(:@native, native)
      client.instance_variable_set(:@server, owned_server)
      client
    end
    private_class_method :wrap

    # The address connected to, or nil for an in-process client.
    def address
      @native.address
    end

    def in_process?
      !@routed && @native.address.nil?
    end

    # Calls are routed by storage (`servers:`).
    def routed?
      @routed == true
    end

    def timeout
      @native.timeout
    end

    def timeout=(seconds)
      @native.timeout = seconds&.to_f
    end

    def repository(storage, relative_path)
      Repository.new(self, storage, relative_path)
    end

    # Raw unary call: `method` like "/gitaly.RefService/RefExists", `request` the encoded
    # request message; returns the encoded response (a binary String).
    def call(method, request)
      @native.call(method.to_s, request.to_s.b)
    end

    # Raw server-streaming call: an Enumerator of encoded response messages, read lazily.
    def call_stream(method, request)
      native = @native
      method = method.to_s
      request = request.to_s.b
      Enumerator.new { |y| Client.drain(native.call_stream(method, request), y) { |m| m } }
    end

    # Stop the in-process server this client started, if any.
    def close
      @server&.stop
      @server = nil
    end

    def inspect
      return "#<GitRPC::Client routed>" if routed?

      "#<GitRPC::Client #{address || "in-process"}>"
    end

    # @api private: `servers:` as [[storage, address, token]] and [[storage, Native::Server]].
    def self.routes(servers)
      unless servers.is_a?(Hash) && !servers.empty?
        raise ArgumentError, "servers: must be a non-empty Hash of storage name => servers"
      end

      remotes = []
      locals = []
      servers.each do |name, spec|
        name = name.to_s
        case spec
        when String
          remotes << [name, spec, nil]
        when Hash
          spec = spec.transform_keys(&:to_sym)
          unknown = spec.keys - %i[address token]
          raise ArgumentError, "servers: #{name}: unknown key #{unknown.first}" unless unknown.empty?
          raise ArgumentError, "servers: #{name}: address missing" unless spec[:address]

          remotes << [name, spec[:address].to_s, spec[:token]&.to_s]
        when Server
          raise ArgumentError, "servers: #{name}: server not started" unless spec.running?

          locals << [name, spec.native]
        else
          raise ArgumentError,
                "servers: #{name}: expected an address, { address:, token: } or a GitRPC::Server, not #{spec.class}"
        end
      end
      [remotes, locals]
    end

    # @api private
    attr_reader :native

    # @api private: feed a native stream into an Enumerator yielder; closing it on the way
    # out (break, exception) cancels the call on the server.
    def self.drain(stream, yielder)
      while (batch = stream.next_batch)
        batch.each { |item| yielder << yield(item) }
      end
    ensure
      stream&.close
    end
  end
end
