# frozen_string_literal: true

# `git http-backend` as a Rack app (the CGI protocol by hand), for bench/frontdoors.py to
# compare GitRPC::SmartHTTP with under the same puma: one http-backend per request, the
# request body piped in from a thread, the CGI headers parsed, the rest streamed out in
# 64 KiB pieces through one reused buffer (as SmartHTTP's body does).
class HttpBackend
  CHUNK = 65_536

  def initialize(project_root, backend)
    @root = project_root
    @backend = backend
  end

  def call(env)
    cgi = {
      "GIT_PROJECT_ROOT" => @root, "GIT_HTTP_EXPORT_ALL" => "1", "PATH" => ENV.fetch("PATH"),
      "GIT_CONFIG_GLOBAL" => "/dev/null", "GIT_CONFIG_NOSYSTEM" => "1",
      "GATEWAY_INTERFACE" => "CGI/1.1", "REQUEST_METHOD" => env["REQUEST_METHOD"],
      "PATH_INFO" => env["PATH_INFO"], "QUERY_STRING" => env["QUERY_STRING"].to_s,
      "CONTENT_TYPE" => env["CONTENT_TYPE"].to_s, "CONTENT_LENGTH" => env["CONTENT_LENGTH"].to_s,
      "REMOTE_ADDR" => env["REMOTE_ADDR"].to_s, "REMOTE_USER" => "bench"
    }
    %w[HTTP_CONTENT_ENCODING HTTP_GIT_PROTOCOL].each { |k| cgi[k] = env[k] if env[k] }
    in_r, in_w = IO.pipe
    out_r, out_w = IO.pipe
    pid = Process.spawn(cgi, @backend, in: in_r, out: out_w, err: File::NULL, unsetenv_others: true)
    in_r.close
    out_w.close
    feeder = Thread.new do
      input = env["rack.input"]
      buf = String.new(capacity: CHUNK, encoding: Encoding::BINARY)
      in_w.write(buf) while input&.read(CHUNK, buf)
    rescue Errno::EPIPE
      nil
    ensure
      in_w.close
    end
    status = 200
    headers = {}
    while (line = out_r.gets) && !(line = line.chomp).empty?
      name, value = line.split(":", 2)
      next unless value

      if name.casecmp?("Status") then status = value.to_i
      else headers[name.downcase] = value.strip
      end
    end
    [status, headers, Body.new(out_r, pid, feeder)]
  end

  # The CGI's output after its headers; `close` reaps it.
  class Body
    def initialize(out, pid, feeder)
      @out = out
      @pid = pid
      @feeder = feeder
    end

    def each
      buf = String.new(capacity: CHUNK, encoding: Encoding::BINARY)
      loop do
        @out.readpartial(CHUNK, buf)
        yield buf
      end
    rescue EOFError
      nil
    end

    def close
      @out.close
      @feeder.join
      Process.wait(@pid)
    end
  end
end
