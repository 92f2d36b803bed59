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

    # `detail`: the structured detail the server sent with the status (a frozen Hash whose
    # :type is :merge_conflict, :custom_hook, :access_check, :reference_update,
    # :reference_exists, :index_update, :not_ancestor, :changes_already_applied or
    # :resolve_revision), or nil.
    attr_reader :code, :details, :detail

    # The error for a status, as the extension reports it: a hook's refusal is a
    # PushRejected, a conflict a MergeConflictError, anything else the code's class.
    def self.from_status(code, details, detail = nil)
      klass = case detail && detail[:type]
              when :custom_hook, :access_check then PushRejected
              when :merge_conflict then MergeConflictError
              else CLASSES.fetch(code, UnknownError)
              end
      klass.new(details, code: code, detail: detail)
    end

    def initialize(details = nil, code: self.class::CODE, detail: nil)
      @code = code
      @details = details.to_s
      @detail = detail
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

  # A hook refused a push or an operation. `message` is the hook's own message (what a hook
  # block raised, or what a hook executable printed); `hook_type` :pre_receive or :update
  # (nil if the server did not say). `code` is the status' code: 7 (permission denied), or
  # 9 (failed precondition) for cherry-pick, whose refusals Gitaly words as an access check.
  #
  # Raise it from a hook block to refuse with a message: `raise GitRPC::PushRejected, "frozen"`.
  class PushRejected < PermissionDeniedError
    def initialize(details = nil, code: CODE, detail: nil)
      super
      @hook_message = hook_message(detail) || @details
    end

    def message = @hook_message
    def to_s = @hook_message
    def hook_type = detail && detail[:hook_type]
    def stdout = detail && detail[:stdout]
    def stderr = detail && detail[:stderr]

    private

    def hook_message(detail)
      return nil unless detail

      text = case detail[:type]
             when :access_check then detail[:message].to_s
             else [detail[:stderr], detail[:stdout]].map { |s| s.to_s.strip }.find { |s| !s.empty? }
             end
      text.nil? || text.empty? ? nil : text.dup.force_encoding(Encoding::UTF_8).scrub
    end
  end

  # A merge, cherry-pick, revert, squash or rebase met conflicts: `conflicting_paths` (binary
  # Strings, each once) and, where the server names them, `conflicting_commit_ids` (ours,
  # theirs).
  class MergeConflictError < FailedPreconditionError
    def conflicting_paths = (detail && detail[:conflicting_paths]) || []
    def conflicting_commit_ids = (detail && detail[:conflicting_commit_ids]) || []
  end

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
