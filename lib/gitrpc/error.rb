# frozen_string_literal: true

module GitRPC
  # Base of every error gitrpc raises.
  class Error < StandardError; end

  # A call failed with a gRPC status. Each status code has its own subclass, so callers can
  # `rescue GitRPC::NotFoundError` and friends; `#code` is the numeric code and `#details`
  # the server's message.
  class RPCError < Error
    CODE_NAMES = {
      1 => :cancelled, 2 => :unknown, 3 => :invalid_argument, 4 => :deadline_exceeded,
      5 => :not_found, 6 => :already_exists, 7 => :permission_denied,
      8 => :resource_exhausted, 9 => :failed_precondition, 10 => :aborted,
      11 => :out_of_range, 12 => :unimplemented, 13 => :internal, 14 => :unavailable,
      15 => :data_loss, 16 => :unauthenticated
    }.freeze

    attr_reader :code, :details

    # The error for a status, as the extension reports it.
    def self.from_status(code, details)
      klass = CLASSES.fetch(code, UnknownError)
      klass.new(details, code: code)
    end

    def initialize(details = nil, code: self.class::CODE)
      @code = code
      @details = details.to_s
      super(@details.empty? ? code_name.to_s : "#{code_name}: #{@details}")
    end

    def code_name
      CODE_NAMES.fetch(code, :unknown)
    end
  end

  class CanceledError < RPCError; CODE = 1; end
  class UnknownError < RPCError; CODE = 2; end
  class InvalidArgumentError < RPCError; CODE = 3; end
  class DeadlineExceededError < RPCError; CODE = 4; end
  class NotFoundError < RPCError; CODE = 5; end
  class AlreadyExistsError < RPCError; CODE = 6; end
  class PermissionDeniedError < RPCError; CODE = 7; end
  class ResourceExhaustedError < RPCError; CODE = 8; end
  class FailedPreconditionError < RPCError; CODE = 9; end
  class AbortedError < RPCError; CODE = 10; end
  class OutOfRangeError < RPCError; CODE = 11; end
  class UnimplementedError < RPCError; CODE = 12; end
  class InternalError < RPCError; CODE = 13; end
  class UnavailableError < RPCError; CODE = 14; end
  class DataLossError < RPCError; CODE = 15; end
  class UnauthenticatedError < RPCError; CODE = 16; end

  class RPCError
    CLASSES = [
      CanceledError, UnknownError, InvalidArgumentError, DeadlineExceededError,
      NotFoundError, AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError,
      FailedPreconditionError, AbortedError, OutOfRangeError, UnimplementedError,
      InternalError, UnavailableError, DataLossError, UnauthenticatedError
    ].to_h { |k| [k::CODE, k] }.freeze
  end

  # Raise this from a pre-receive block to refuse a push; its message is shown to the pusher.
  class PushRejected < Error; end

  # Raise this from GitRPC::SmartHTTP's `authorize` to ask the client for credentials: the
  # answer is 401 with `WWW-Authenticate: Basic realm="…"` (git then asks its credential
  # helper and retries); the message is the body.
  class Unauthorized < Error
    attr_reader :realm

    def initialize(message = "HTTP Basic: Access denied", realm: nil)
      super(message)
      @realm = realm
    end
  end
end
