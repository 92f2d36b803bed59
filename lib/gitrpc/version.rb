# frozen_string_literal: true

module GitRPC
  VERSION = "0.1.0"
end
