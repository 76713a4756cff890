using System.Text;

namespace WeakSeg.IO;

/// <summary>
/// Writes files so that a reader never sees a half-written one: the content goes to <c>path.PID-RANDOM.tmp</c>, which is then
/// renamed over <paramref name="path"/> (an atomic replace on the same file system). The temporary name is unique per writer, so
/// two processes writing the same file never write into, or delete, each other's temporary file: the last rename wins whole. Long jobs use this for every output,
/// so an interrupted run keeps what it finished. A writer killed between the two steps (kill -9, power loss) leaves its temporary
/// file, which nothing reads; <see cref="RemoveStaleTemporaryFiles"/> deletes those of dead processes when a folder is next locked
/// (<see cref="FolderLock.Acquire"/>).
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

    /// <summary>The writer's process id in a name made by <see cref="TemporaryPathFor"/> (<c>NAME.PID-8HEX.tmp</c>); null for any other name.</summary>
    public static int? WriterOf(string fileName)
    {
        if (!fileName.EndsWith(".tmp", StringComparison.Ordinal)) return null;
        var stem = fileName[..^4];
        int dot = stem.LastIndexOf('.'), dash = stem.LastIndexOf('-');
        if (dot < 1 || dash != stem.Length - 9 || dash < dot + 2) return null;
        var random = stem.AsSpan(dash + 1);
        foreach (var c in random) if (!char.IsAsciiHexDigitLower(c)) return null;
        return int.TryParse(stem.AsSpan(dot + 1, dash - dot - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
            ? pid : null;
    }

    /// <summary>
    /// Deletes the temporary files (<see cref="TemporaryPathFor"/> names) under <paramref name="directory"/> and its subfolders whose
    /// writer process no longer runs: leftovers of writers that were killed before their rename. Files of this process and of running
    /// ones are kept (a process id reused by an unrelated process keeps its file too: the check only errs towards keeping). Symbolic
    /// links are not followed. Returns the number deleted.
    /// </summary>
    public static int RemoveStaleTemporaryFiles(string directory)
    {
        if (!Directory.Exists(directory)) return 0;
        int removed = 0;
        var walk = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        try
        {
            foreach (var path in Directory.EnumerateFiles(directory, "*.tmp", walk))
            {
                if (WriterOf(Path.GetFileName(path)) is not { } pid || pid == Environment.ProcessId || IsRunning(pid)) continue;
                File.Delete(path);
                removed++;
            }
        }
        catch (IOException) { }                                             // a folder that changes underneath: leftovers wait for the next time
        catch (UnauthorizedAccessException) { }
        return removed;
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }                        // no process with this id
        catch (InvalidOperationException) { return false; }
        catch (System.ComponentModel.Win32Exception) { return true; }       // exists, but not ours to inspect
    }

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
