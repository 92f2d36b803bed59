# frozen_string_literal: true

# Runs the shared examples named `examples` twice, with `client` a GitRPC::Client of a
# GitRPC::Server on a unix socket in the temp dir, and with `client` an in-process client
# (no listener). Used inside a describe that includes the "temp storage" context:
#
#   include_examples "with a remote and an in-process client", "a diff reader"
RSpec.shared_examples "with a remote and an in-process client" do |examples|
  context "with a remote client" do
    around do |example|
      GitRPC::Server.start(storages: { "default" => storage }, listen: ["unix:#{@dir}/s.sock"]) do |server|
        @server = server
        example.run
      end
    end

    let(:client) { GitRPC::Client.new(@server.address, timeout: 20) }

    it_behaves_like examples
  end

  context "with an in-process client" do
    let(:client) { GitRPC::Client.new(storages: { "default" => storage }) }

    after { client.close }

    it_behaves_like examples
  end
end
