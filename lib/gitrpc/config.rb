# frozen_string_literal: true

module GitRPC
  # Keyword arguments → the config Hash a server starts from: the keys and tables of
  # `gitrpcd --config` (a Hash value is a table, an Array of Hashes an array of tables), plus
  # two conveniences, `storages:` (name => path) and `listen:` (addresses). The extension turns
  # the Hash into the server's typed config: an unknown key or a value of the wrong type raises
  # ArgumentError naming it.
  #
  #   Config.build(storages: { "default" => "/srv/repos" }, listen: ["unix:/tmp/g.sock"],
  #                spool: { threshold: 1 << 20 }, graceful_restart_timeout: 5,
  #                concurrency: [{ rpc: "/gitaly.SSHService/SSHUploadPack", max_concurrency: 4 }])
  #   # => { "socket_path" => "/tmp/g.sock", "spool" => { threshold: 1048576 }, ...,
  #   #      "storage" => [{ "name" => "default", "path" => "/srv/repos" }] }   (frozen)
  module Config
    module_function

    def build(storages: nil, listen: nil, **rest)
      config = listen_keys(listen).merge(rest.transform_keys(&:to_s))
      entries = storage_entries(storages)
      unless entries.empty?
        raise ArgumentError, "give storages: or storage:, not both" if config.key?("storage")

        config["storage"] = entries
      end
      deep_freeze(config)
    end

    # Raise ArgumentError unless `config` (from .build) is a valid server config.
    def check(config)
      Native::Server.check_config(config)
      config
    end

    def listen_keys(listen)
      out = {}
      Array(listen).each do |addr|
        addr = addr.to_s
        key, value = if addr.start_with?("unix:")
                       ["socket_path", addr.delete_prefix("unix:")]
                     elsif addr.start_with?("tls://")
                       ["tls_listen_addr", addr.delete_prefix("tls://")]
                     else
                       ["listen_addr", addr.delete_prefix("tcp://")]
                     end
        raise ArgumentError, "listen: at most one unix:, one tcp and one tls:// address" if out.key?(key)

        out[key] = value
      end
      out
    end

    def storage_entries(storages)
      case storages
      when nil then []
      when Hash then storages.map { |n, p| { "name" => n.to_s, "path" => p.to_s } }
      else raise ArgumentError, "storages: must be a Hash of name => path"
      end
    end

    def deep_freeze(value)
      case value
      when Hash then value.each_value { |v| deep_freeze(v) }
      when Array then value.each { |v| deep_freeze(v) }
      end
      value.freeze
    end
  end
end
