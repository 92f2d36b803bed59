# frozen_string_literal: true

require "spec_helper"

# Repository#license (FindLicense) on repositories built with git.
RSpec.shared_examples "a license reader" do
  mit = <<~MIT
    MIT License

    Copyright (c) 2026 Ada Lovelace

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all
    copies or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
    IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
    FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
    LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
    SOFTWARE.
  MIT

  # A bare repository at storage/rel whose main has these files.
  def make_files_repo(storage, rel, files)
    path = File.join(storage, rel)
    FileUtils.mkdir_p(path)
    git(path, "init", "--bare", "-q", "-b", "main")
    in_tmpdir do |work|
      git(work, "init", "-q", "-b", "main")
      files.each { |name, content| File.write(File.join(work, name), content) }
      git(work, "add", ".")
      git(work, "commit", "-qm", "files")
      git(work, "push", "-q", path, "main")
    end
    client.repository("default", rel)
  end

  it "names the license of the default branch's root" do
    license = make_files_repo(storage, "mit.git", "LICENSE" => mit, "a.txt" => "a\n").license
    expect(license).to be_a(GitRPC::License)
    expect(license.to_a).to eq(["mit", "MIT License", "https://opensource.org/license/MIT", "LICENSE", ""])
    expect(license).not_to be_other
  end

  it "answers other for an unknown license and nil without one" do
    other = make_files_repo(storage, "other.git", "COPYING" => "do what you like, but not that\n").license
    expect([other.short_name, other.name, other.nickname, other.path]).to eq(%w[other Other LICENSE COPYING])
    expect(other).to be_other
    expect(make_files_repo(storage, "none.git", "README.md" => "MIT licensed\n").license).to be_nil
    empty = File.join(storage, "empty.git")
    FileUtils.mkdir_p(empty)
    git(empty, "init", "--bare", "-q")
    expect(client.repository("default", "empty.git").license).to be_nil
    expect { client.repository("default", "missing.git").license }.to raise_error(GitRPC::NotFoundError)
  end
end

RSpec.describe "GitRPC::Repository#license" do
  include_context "temp storage"

  include_examples "with a remote and an in-process client", "a license reader"
end
