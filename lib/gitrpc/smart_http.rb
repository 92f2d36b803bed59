# frozen_string_literal: true

require "rack"

module GitRPC
  # git's smart HTTP protocol as a Rack endpoint, relaying onto a gitrpc (or Gitaly) server:
  #
  #   client = GitRPC::Client.new("unix:/run/gitrpc.sock")     # or GitRPC::Client.new(storages: {...})
  #   app = GitRPC::SmartHTTP.new(client: client, storage: "default",
  #                               authorize: ->(request, repository, action) { ... })
  #   # Rails (config/routes.rb):  mount app => "/git"
  #   # config.ru:                 map("/git") { run app }   (or just `run app`)
  #
  # The path below the mount point is the repository's path in `storage` (`group/project`
  # and `group/project.git` are the same repository). It serves `GET …/info/refs?service=…`,
  # `POST …/git-upload-pack` and `POST …/git-receive-pack`, protocol v0 and v2
  # (`Git-Protocol`), gzip request bodies; anything else is 404 (dumb HTTP is not served).
  #
  # `authorize` is called for every request (info/refs and the POSTs) with a Rack::Request,
  # the GitRPC::Repository and the action (`"git-upload-pack"` or `"git-receive-pack"`):
  # return true to allow (or a GitRPC::User / Hash with `gl_id`, `gl_username` (or `username`),
  # `gl_repository`: the user's identity then reaches the server's hooks), false or nil to
  # refuse (403), or raise GitRPC::Unauthorized to ask for credentials (401 with
  # `WWW-Authenticate: Basic`). Without `authorize`, reads are allowed and pushes refused.
  #
  # Bytes stream both ways: the request body is read in 64 KiB pieces and handed to the RPC,
  # the response is yielded chunk by chunk as the server sends it; every wait happens with
  # the GVL released, and nothing proportional to a pack is held in Ruby memory. (Puma reads
  # a request body fully before calling the app, into a temp file past 112 KiB: the RPC
  # starts once the upload has arrived.) Closing the body (Rack always does) cancels the RPC
  # and the server's git.
  class SmartHTTP
    # Bytes of request body handed over at once.
    CHUNK = 65_536

    attr_reader :client, :storage

    # `reuse_buffer`: the response body yields one String, refilled for each chunk (see
    # Body); `false` yields a new String per chunk, for middleware that keeps the parts it
    # sees (Rack::MockResponse does), at the cost of garbage for the GC.
    def initialize(client:, storage: "default", authorize: nil, realm: "gitrpc", reuse_buffer: true)
      raise TypeError, "authorize must respond to #call" unless authorize.nil? || authorize.respond_to?(:call)

      @client = client
      @storage = storage.to_s
      @authorize = authorize
      @realm = realm.to_s
      @reuse_buffer = reuse_buffer
    end

    def call(env)
      kind, *rest = Native::SmartHTTP.route(env["REQUEST_METHOD"].to_s, env["PATH_INFO"].to_s,
                                            env["QUERY_STRING"].to_s, @storage)
      return reply(*rest) if kind == :reply

      endpoint, action, storage, relative_path = rest
      refusal, user = authorized(env, storage, relative_path, action)
      return reply(*refusal) if refusal

      gzip = false
      if endpoint == "post"
        tag, *value = Native::SmartHTTP.check_post(action, env["CONTENT_TYPE"], env["HTTP_CONTENT_ENCODING"])
        return reply(*value) unless tag == :ok

        gzip = value.first == "gzip"
      end
      start(env, endpoint, action, storage, relative_path, gzip, user)
    end

    private

    # [nil, the user's identity ([gl_id, username, gl_repository])], or [the refusal].
    def authorized(env, storage, relative_path, action)
      unless @authorize
        return [nil, identity(nil)] if action == "git-upload-pack"

        return [Native::SmartHTTP.forbidden(action, "pushes are not allowed")]
      end
      verdict = @authorize.call(Rack::Request.new(env), @client.repository(storage, relative_path), action)
      return [Native::SmartHTTP.forbidden(action, "")] unless verdict

      [nil, identity(verdict)]
    rescue Unauthorized => e
      [Native::SmartHTTP.unauthorized(e.realm || @realm, e.message)]
    end

    def identity(verdict)
      h = case verdict
          when Hash then verdict
          when Struct then verdict.to_h
          else return [nil, nil, nil]
          end
      [h[:gl_id], h[:gl_username] || h[:username], h[:gl_repository]].map { |v| v&.to_s }
    end

    def start(env, endpoint, action, storage, relative_path, gzip, user)
      who = [*user, env["REMOTE_ADDR"]&.to_s]
      call = Native::HTTPCall.start(@client.native, endpoint, action, storage, relative_path,
                                    env["HTTP_GIT_PROTOCOL"], gzip, who)
      begin
        feed(call, env["rack.input"]) if endpoint == "post"
        call.close_write
        if (failure = call.failure)
          call.close
          return reply(*failure)
        end
      rescue Exception # rubocop:disable Lint/RescueException -- the call must not outlive us
        call.close
        raise
      end
      [200, headers(Native::SmartHTTP.headers(endpoint, action)), Body.new(call, reuse_buffer: @reuse_buffer)]
    end

    def feed(call, input)
      return unless input

      buf = String.new(capacity: CHUNK, encoding: Encoding::BINARY)
      while input.read(CHUNK, buf)
        break unless call.write(buf)
      end
    end

    def reply(status, pairs, body)
      [status, headers(pairs), [body]]
    end

    # Lower-case names (Rack 3 requires them; Rack 2 and git don't mind).
    def headers(pairs)
      pairs.to_h { |k, v| [k.downcase, v] }
    end

    # The response body: the RPC's chunks as they come; `close` cancels the RPC.
    #
    # By default it yields one String, refilled for each chunk: the block must consume it
    # before returning, as web servers (puma, unicorn, passenger) and streaming middleware
    # (Rack::Deflater, Rack::Chunked) do; middleware that keeps parts needs
    # `reuse_buffer: false`. A String per chunk leaves a pack's worth of garbage between GC
    # runs: measured under puma, its peak RSS grew ~75 MiB more per 96 MiB clone.
    class Body
      def initialize(call, reuse_buffer: true)
        @call = call
        @reuse = reuse_buffer
      end

      def each
        buf = new_buffer
        while @call.read(buf)
          yield buf
          buf = new_buffer unless @reuse
        end
      end

      def close
        @call.close
      end

      private

      def new_buffer
        String.new(capacity: CHUNK, encoding: Encoding::BINARY)
      end
    end
  end
end
