using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Peft.Tests.Hub;

/// <summary>
/// A minimal stand-in for the Hugging Face hub on 127.0.0.1 (HttpListener, free port): the model-info API, resolve
/// URLs that answer small files directly with their git blob id as ETag and large ("LFS") files with a redirect
/// carrying the sha256 in X-Linked-Etag, and a "CDN" route with Range support that can cut the first transfer of a
/// file in the middle.
/// </summary>
internal sealed class FakeHubServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Dictionary<string, byte[]> _files;
    private readonly ConcurrentDictionary<string, int> _contentRequests = new();
    private readonly Task _loop;

    public FakeHubServer(string repoId, string commit, Dictionary<string, byte[]> files)
    {
        RepoId = repoId;
        Commit = commit;
        _files = files;
        int port = FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public string Endpoint { get; }

    public string RepoId { get; }

    public string Commit { get; }

    /// <summary>Files served through the LFS redirect (sha256 ETag); the rest are "regular" git files.</summary>
    public HashSet<string> LfsFiles { get; } = [];

    /// <summary>Files whose first content transfer is cut after half the bytes.</summary>
    public HashSet<string> DropFirstTransfer { get; } = [];

    /// <summary>ETags to announce instead of the true hash (to simulate corruption).</summary>
    public Dictionary<string, string> WrongEtags { get; } = [];

    /// <summary>Every request, as "METHOD path [Range]".</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    public static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>git's blob id: SHA-1 of "blob {length}\0" followed by the content.</summary>
    public static string GitBlobId(byte[] data) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {data.Length}\0"), .. data]));

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }

    private static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = Task.Run(() => Handle(context));
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        string path = Uri.UnescapeDataString(request.Url!.AbsolutePath);
        Log.Enqueue($"{request.HttpMethod} {path} {request.Headers["Range"]}".TrimEnd());
        try
        {
            string api = $"/api/models/{RepoId}/revision/";
            string resolve = $"/{RepoId}/resolve/";
            if (path.StartsWith(api, StringComparison.Ordinal))
            {
                var info = new { sha = Commit, siblings = _files.Keys.Select(f => new { rfilename = f }).ToArray() };
                Send(response, 200, JsonSerializer.SerializeToUtf8Bytes(info), request.HttpMethod);
            }
            else if (path.StartsWith(resolve, StringComparison.Ordinal))
            {
                string rest = path[resolve.Length..];
                int slash = rest.IndexOf('/');
                string revision = rest[..slash], file = rest[(slash + 1)..];
                if (revision != Commit || !_files.TryGetValue(file, out var data))
                {
                    Send(response, 404, "Entry not found"u8.ToArray(), request.HttpMethod);
                    return;
                }
                response.Headers["X-Repo-Commit"] = Commit;
                if (LfsFiles.Contains(file))
                {
                    response.Headers["X-Linked-Etag"] = $"\"{WrongEtags.GetValueOrDefault(file, Sha256(data))}\"";
                    response.Headers["X-Linked-Size"] = data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    response.Headers["Location"] = $"/cdn/{Uri.EscapeDataString(file)}?signature=x";
                    response.StatusCode = 302;
                    response.Close();
                }
                else
                {
                    response.Headers["ETag"] = $"\"{WrongEtags.GetValueOrDefault(file, GitBlobId(data))}\"";
                    Send(response, 200, data, request.HttpMethod);
                }
            }
            else if (path.StartsWith("/cdn/", StringComparison.Ordinal) && _files.TryGetValue(path[5..], out var content))
            {
                ServeContent(path[5..], content, request, response);
            }
            else
            {
                Send(response, 404, [], request.HttpMethod);
            }
        }
        catch (HttpListenerException)
        {
            // The client went away; nothing to do.
        }
    }

    private void ServeContent(string file, byte[] content, HttpListenerRequest request, HttpListenerResponse response)
    {
        long start = 0;
        if (request.Headers["Range"] is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
            start = long.Parse(range[6..^1], System.Globalization.CultureInfo.InvariantCulture);
        int transfer = _contentRequests.AddOrUpdate(file, 1, (_, n) => n + 1);
        response.StatusCode = start > 0 ? 206 : 200;
        if (start > 0) response.Headers["Content-Range"] = $"bytes {start}-{content.Length - 1}/{content.Length}";
        response.ContentLength64 = content.Length - start;
        if (transfer == 1 && DropFirstTransfer.Contains(file))
        {
            // Announce the whole length, send half, then drop the connection.
            response.OutputStream.Write(content, (int)start, (int)((content.Length - start) / 2));
            response.OutputStream.Flush();
            response.Abort();
            return;
        }
        response.OutputStream.Write(content, (int)start, (int)(content.Length - start));
        response.Close();
    }

    private static void Send(HttpListenerResponse response, int status, byte[] body, string method)
    {
        response.StatusCode = status;
        response.ContentLength64 = body.Length;
        if (method != "HEAD") response.OutputStream.Write(body);
        response.Close();
    }
}
