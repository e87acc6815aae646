using System.Text;
using Microsoft.ML.Peft.Hub;
using Microsoft.ML.Peft.IO;
using static Microsoft.ML.Peft.Tests.IO.IoTestHelpers;

namespace Microsoft.ML.Peft.Tests.Hub;

[TestClass]
public sealed class PretrainedSourceTests
{
    private const string Repo = "tiny-org/tiny-model";
    private const string Commit = "0123456789abcdef0123456789abcdef01234567";

    /// <summary>An endpoint nothing listens on: any network use fails the test.</summary>
    private static PretrainedSourceOptions NoNetwork(string cache) => new() { Endpoint = "http://127.0.0.1:9", CacheDirectory = cache, MaxAttempts = 1 };

    private static Dictionary<string, byte[]> ShardedModel()
    {
        var one = new SafeTensorsWriter();
        one.Add("embed.weight", Enumerable.Range(0, 4096).Select(i => i * 0.25f).ToArray(), 64, 64);
        var two = new SafeTensorsWriter();
        two.Add("head.weight", new float[] { 1, -1, 0.5f }, 3);
        const string index = """{"metadata": {"total_size": 16396}, "weight_map": {"embed.weight": "model-00001-of-00002.safetensors", "head.weight": "model-00002-of-00002.safetensors"}}""";
        return new Dictionary<string, byte[]>
        {
            ["config.json"] = File.ReadAllBytes(Path.Combine(TestPaths.Stories260K, "config.json")),
            ["tokenizer.json"] = Encoding.UTF8.GetBytes("{\"version\": \"1.0\"}"),
            ["README.md"] = "not needed"u8.ToArray(),
            ["model.safetensors.index.json"] = Encoding.UTF8.GetBytes(index),
            ["model-00001-of-00002.safetensors"] = one.ToArray(),
            ["model-00002-of-00002.safetensors"] = two.ToArray(),
        };
    }

    [TestMethod]
    public void LocalFolder_IsReturnedWithoutNetwork()
    {
        using var cache = new TempFolder();
        Assert.AreEqual(Path.GetFullPath(TestPaths.Stories260K), PretrainedSource.Resolve(TestPaths.Stories260K, NoNetwork(cache.Path)));
        Assert.Throws<DirectoryNotFoundException>(() => PretrainedSource.Resolve("/no/such/folder", NoNetwork(cache.Path)));
        Assert.Throws<DirectoryNotFoundException>(() => PretrainedSource.Resolve("./relative/missing", NoNetwork(cache.Path)));
        Assert.Throws<DirectoryNotFoundException>(() => PretrainedSource.Resolve("bad name/with space", NoNetwork(cache.Path)));
    }

    [TestMethod]
    public void GitBlobId_MatchesGit()
    {
        // `git hash-object` of an empty file and of "hello\n" (well-known values).
        Assert.AreEqual("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", FakeHubServer.GitBlobId([]));
        Assert.AreEqual("ce013625030ba8dba906f756967f9e9ca394464a", FakeHubServer.GitBlobId("hello\n"u8.ToArray()));
    }

    [TestMethod]
    public void Download_ResumesAfterDroppedConnection_VerifiesAndCaches()
    {
        var files = ShardedModel();
        using var server = new FakeHubServer(Repo, Commit, files);
        server.LfsFiles.UnionWith(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
        server.DropFirstTransfer.Add("model-00001-of-00002.safetensors");
        using var cache = new TempFolder();
        var options = new PretrainedSourceOptions { Endpoint = server.Endpoint, CacheDirectory = cache.Path, Offline = false };

        string folder = PretrainedSource.Resolve(Repo, options);

        Assert.AreEqual(Path.Combine(cache.Path, "models--tiny-org--tiny-model", "snapshots", Commit), folder);
        foreach (string name in new[] { "config.json", "tokenizer.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" })
            CollectionAssert.AreEqual(files[name], File.ReadAllBytes(Path.Combine(folder, name)), name);
        Assert.IsFalse(File.Exists(Path.Combine(folder, "README.md")), "only model files are fetched");
        int half = files["model-00001-of-00002.safetensors"].Length / 2;
        CollectionAssert.Contains(server.Log.ToArray(), $"GET /cdn/model-00001-of-00002.safetensors bytes={half}-", "the second transfer resumes");
        string blob = Path.Combine(cache.Path, "models--tiny-org--tiny-model", "blobs", FakeHubServer.Sha256(files["model-00001-of-00002.safetensors"]));
        Assert.IsTrue(File.Exists(blob), "LFS blobs are named by their sha256");
        Assert.AreEqual(Commit, File.ReadAllText(Path.Combine(cache.Path, "models--tiny-org--tiny-model", "refs", "main")));
        Assert.IsEmpty(Directory.GetFiles(Path.GetDirectoryName(blob)!, "*.incomplete"));

        using (var weights = Checkpoint.Open(folder))
        {
            Assert.AreEqual(63.75f, weights.GetTensor("embed.weight").AsFloat32()[255]);
            CollectionAssert.AreEqual(new float[] { 1, -1, 0.5f }, weights.GetTensor("head.weight").AsFloat32().ToArray());
        }

        // A second resolve asks the API for the commit but downloads nothing; offline mode needs no network at all.
        int contentRequests = server.Log.Count(l => l.StartsWith("GET /cdn/", StringComparison.Ordinal) || l.Contains("/resolve/", StringComparison.Ordinal));
        Assert.AreEqual(folder, PretrainedSource.Resolve(Repo, options));
        Assert.AreEqual(contentRequests, server.Log.Count(l => l.StartsWith("GET /cdn/", StringComparison.Ordinal) || l.Contains("/resolve/", StringComparison.Ordinal)));
        Assert.AreEqual(folder, PretrainedSource.Resolve(Repo, NoNetwork(cache.Path) with { Offline = true }));
    }

    [TestMethod]
    public void ChecksumMismatch_FailsAndLeavesNothingBehind()
    {
        var files = ShardedModel();
        files.Remove("model.safetensors.index.json");
        files.Remove("model-00002-of-00002.safetensors");
        files["model.safetensors"] = files["model-00001-of-00002.safetensors"];
        files.Remove("model-00001-of-00002.safetensors");
        using var server = new FakeHubServer(Repo, Commit, files);
        server.LfsFiles.Add("model.safetensors");
        server.WrongEtags["model.safetensors"] = new string('a', 64);
        using var cache = new TempFolder();
        var options = new PretrainedSourceOptions { Endpoint = server.Endpoint, CacheDirectory = cache.Path, Offline = false };

        var e = Assert.Throws<HubException>(() => PretrainedSource.Resolve(Repo, options));
        StringAssert.Contains(e.Message, "tiny-org/tiny-model/model.safetensors");
        StringAssert.Contains(e.Message, "does not match");
        StringAssert.Contains(e.Message, FakeHubServer.Sha256(files["model.safetensors"]));
        string repoFolder = Path.Combine(cache.Path, "models--tiny-org--tiny-model");
        Assert.IsEmpty(Directory.GetFiles(Path.Combine(repoFolder, "blobs"), "*.incomplete"));
        Assert.IsFalse(File.Exists(Path.Combine(repoFolder, "snapshots", Commit, "model.safetensors")));
        Assert.IsFalse(File.Exists(Path.Combine(repoFolder, "refs", "main")), "an incomplete snapshot is never published as main");
    }

    [TestMethod]
    public void SmallFileWithWrongGitBlobId_IsRejected()
    {
        var files = ShardedModel();
        using var server = new FakeHubServer(Repo, Commit, files);
        server.WrongEtags["config.json"] = new string('b', 40);
        using var cache = new TempFolder();
        var e = Assert.Throws<HubException>(() => PretrainedSource.Resolve(Repo, new PretrainedSourceOptions { Endpoint = server.Endpoint, CacheDirectory = cache.Path, Offline = false }));
        StringAssert.Contains(e.Message, "config.json");
        StringAssert.Contains(e.Message, FakeHubServer.GitBlobId(files["config.json"]));
    }

    [TestMethod]
    public void OfflineWithEmptyCache_FailsClearly()
    {
        using var cache = new TempFolder();
        var e = Assert.Throws<HubException>(() => PretrainedSource.Resolve(Repo, NoNetwork(cache.Path) with { Offline = true }));
        StringAssert.Contains(e.Message, "offline mode");
        StringAssert.Contains(e.Message, Repo);
    }

    [TestMethod]
    public void UnknownRepository_Reports404()
    {
        using var server = new FakeHubServer(Repo, Commit, ShardedModel());
        using var cache = new TempFolder();
        var e = Assert.Throws<HubException>(() => PretrainedSource.Resolve("someone/else", new PretrainedSourceOptions { Endpoint = server.Endpoint, CacheDirectory = cache.Path, Offline = false }));
        StringAssert.Contains(e.Message, "404");
        StringAssert.Contains(e.Message, "someone/else");
    }
}
