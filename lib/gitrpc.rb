# frozen_string_literal: true

# gitrpc: a Gitaly-compatible Git RPC server and client, embedded in Ruby.
#
#   server = GitRPC::Server.start(storages: { "default" => "/srv/repos" },
#                                 listen: ["unix:/tmp/gitrpc.sock"])
#   client = GitRPC::Client.new("unix:/tmp/gitrpc.sock")
#   client.repository("default", "group/project.git").default_branch # => "refs/heads/main"
#   run GitRPC::SmartHTTP.new(client: client)   # config.ru: git clone http://host/group/project.git
module GitRPC
  # The Rack endpoint (loads Rack when first used).
  autoload :SmartHTTP, File.expand_path("gitrpc/smart_http", __dir__)
end

require_relative "gitrpc/version"
require_relative "gitrpc/error"
require_relative "gitrpc/types"
require_relative "gitrpc/config"
require_relative "gitrpc/gitrpc_native"
require_relative "gitrpc/server"
require_relative "gitrpc/client"
require_relative "gitrpc/repository"
