# frozen_string_literal: true

module GitRPC
  # Keyword arguments → the TOML `gitrpcd --config` reads. `storages:` and `listen:` are
  # conveniences; every other keyword is a config key as is (a Hash value is a table):
  #
  #   Config.toml(storages: { "default" => "/srv/repos" }, listen: ["unix:/tmp/g.sock"],
  #               spool: { threshold: 1 << 20 }, graceful_restart_timeout: 5)
  module Config
    KEY = /\A[A-Za-z_][A-Za-z0-9_]*\z/.freeze

    module_function

    def toml(storages: nil, listen: nil, **rest)
      lines = []
      tables = []
      listen_keys(listen).merge(rest.transform_keys(&:to_s)).each do |key, value|
        check_key(key)
        if value.is_a?(Hash)
          tables << "[#{key}]"
          value.each do |k, v|
            check_key(k.to_s)
            tables << "#{k} = #{scalar(v, "#{key}.#{k}")}"
          end
          tables << ""
        elsif !value.nil?
          lines << "#{key} = #{scalar(value, key)}"
        end
      end
      storage_entries(storages).each do |name, path|
        tables << "[[storage]]" << "name = #{scalar(name, "storage name")}" \
               << "path = #{scalar(path, "storage path")}" << ""
      end
      (lines + [""] + tables).join("\n")
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
      when Hash then storages.map { |n, p| [n.to_s, p.to_s] }
      else raise ArgumentError, "storages: must be a Hash of name => path"
      end
    end

    def check_key(key)
      raise ArgumentError, "bad config key #{key.inspect}" unless KEY.match?(key)
    end

    def scalar(value, what)
      case value
      when String, Symbol then string(value.to_s)
      when Pathname then string(value.to_s)
      when Integer then value.to_s
      when Float then value.finite? ? value.to_s : raise(ArgumentError, "#{what}: not finite")
      when true, false then value.to_s
      when Array then "[#{value.map { |v| scalar(v, what) }.join(", ")}]"
      else raise ArgumentError, "#{what}: unsupported value #{value.inspect}"
      end
    end

    def string(s)
      escaped = s.gsub(/[\\"\u0000-\u001f\u007f]/) do |c|
        case c
        when "\\" then "\\\\"
        when '"' then '\\"'
        when "\n" then "\\n"
        when "\t" then "\\t"
        else format("\\u%04X", c.ord)
        end
      end
      "\"#{escaped}\""
    end
  end
end

require "pathname"
