# frozen_string_literal: true

# gitrpc: a Gitaly-compatible Git RPC server and client, embedded in Ruby.
#
#   server = GitRPC::Server.start(storages: { "default" => "/srv/repos" },
#                                 listen: ["unix:/tmp/gitrpc.sock"])
#   client = GitRPC::Client.new("unix:/tmp/gitrpc.sock")
#   client.repository("default", "group/project.git").default_branch # => "refs/heads/main"
module GitRPC
end

require_relative "gitrpc/version"
require_relative "gitrpc/error"
require_relative "gitrpc/types"
require_relative "gitrpc/config"
require_relative "gitrpc/gitrpc_native"
require_relative "gitrpc/server"
require_relative "gitrpc/client"
require_relative "gitrpc/repository"
