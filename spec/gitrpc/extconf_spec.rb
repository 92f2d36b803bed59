# frozen_string_literal: true

require "spec_helper"

load File.join(GitHelpers::ROOT, "ext/gitrpc/extconf.rb") # defines GitRPCBuild, writes nothing

# extconf.rb copies cargo's cdylib to the name Ruby loads; both names follow the platform.
RSpec.describe "extconf.rb file names" do
  platforms = {
    "x86_64-linux" => [{ "host_os" => "linux-gnu", "SOEXT" => "so", "DLEXT" => "so" },
                       "libgitrpc_native.so", "gitrpc_native.so"],
    "arm64-darwin" => [{ "host_os" => "darwin23", "SOEXT" => "dylib", "DLEXT" => "bundle" },
                       "libgitrpc_native.dylib", "gitrpc_native.bundle"],
    "x64-mingw-ucrt" => [{ "host_os" => "mingw32", "SOEXT" => "dll", "DLEXT" => "so" },
                         "gitrpc_native.dll", "gitrpc_native.so"]
  }
  platforms.each do |platform, (config, cargo, ruby)|
    it "on #{platform}: cargo builds #{cargo}, Ruby loads #{ruby}" do
      expect(GitRPCBuild.cargo_cdylib("gitrpc_native", config)).to eq(cargo)
      expect(GitRPCBuild.ruby_extension("gitrpc_native", config)).to eq(ruby)
    end
  end

  it "names what this platform's build really produced" do
    target = ENV["GITRPC_CARGO_TARGET_DIR"] || File.join(GitHelpers::ROOT, "target")
    built = File.join(target, "release", GitRPCBuild.cargo_cdylib("gitrpc_native"))
    expect(File.exist?(built)).to be(true), "#{built} missing"
    expect(File.exist?(File.join(GitHelpers::ROOT, "lib/gitrpc", GitRPCBuild.ruby_extension("gitrpc_native")))).to be(true)
  end
end
