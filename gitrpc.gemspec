# frozen_string_literal: true

require_relative "lib/gitrpc/version"

Gem::Specification.new do |spec|
  spec.name = "gitrpc"
  spec.version = GitRPC::VERSION
  spec.summary = "Gitaly-compatible Git RPC server and client, embeddable in Ruby"
  spec.description = <<~DESC
    A Rust runtime that serves Gitaly's gRPC API by running git safely (posix_spawn, process
    groups, spooled packs), embedded in Ruby: run the server in-process or talk to a remote
    gitrpcd with the same API. The native extension is built with cargo at install time.
  DESC
  spec.authors = ["gitrpc developers"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"

  # The extension builds from the whole Rust workspace (its crates depend on each other).
  spec.files = Dir[
    "README.md", "Cargo.toml", "Cargo.lock", "gitrpc.gemspec",
    "lib/**/*.rb",
    "ext/gitrpc/extconf.rb", "ext/gitrpc/Cargo.toml", "ext/gitrpc/src/**/*.rs",
    "rust/**/*", "third_party/**/*", "include/gitrpc.h"
  ].reject { |f| File.directory?(f) || f.include?("/target/") }
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/gitrpc/extconf.rb"]
end
