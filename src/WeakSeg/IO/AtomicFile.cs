using System.Text;

namespace WeakSeg.IO;

/// <summary>
/// Writes files so that a reader never sees a half-written one: the content goes to <c>path.PID-RANDOM.tmp</c>, which is then
/// renamed over <paramref name="path"/> (an atomic replace on the same file system). The temporary name is unique per writer, so
/// two processes writing the same file never write into, or delete, each other's temporary file: the last rename wins whole. Long jobs use this for every output,
/// so an interrupted run keeps what it finished.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temporary file, then renames it over <paramref name="path"/>.</summary>
    /// <param name="createDirectory">create the parent folder when it is missing</param>
    public static void Write(string path, Action<Stream> write, bool createDirectory = true) =>
        Commit(path, tmp => { using var stream = File.Create(tmp); write(stream); }, createDirectory);

    /// <summary>Lets <paramref name="writeFile"/> write the temporary path it is given (e.g. a library's own save), then renames it over <paramref name="path"/>.</summary>
    public static void Commit(string path, Action<string> writeFile, bool createDirectory = true)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (createDirectory && dir != null) Directory.CreateDirectory(dir);
        var tmp = TemporaryPathFor(full);
        try
        {
            writeFile(tmp);
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>A temporary name beside <paramref name="fullPath"/> that no other writer uses: the process id and a random part.</summary>
    public static string TemporaryPathFor(string fullPath) =>
        $"{fullPath}.{Environment.ProcessId}-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant()}.tmp";

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes, bool createDirectory = true)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy), createDirectory);
    }

    /// <summary>UTF-8 without a byte-order mark.</summary>
    public static void WriteAllText(string path, string text, bool createDirectory = true) =>
        WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text), createDirectory);

    /// <summary>One line per item, each ended by '\n'.</summary>
    public static void WriteAllLines(string path, IEnumerable<string> lines, bool createDirectory = true)
    {
        var sb = new StringBuilder();
        foreach (var line in lines) sb.Append(line).Append('\n');
        WriteAllText(path, sb.ToString(), createDirectory);
    }
}
