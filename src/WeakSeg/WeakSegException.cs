namespace WeakSeg;

/// <summary>An error the user can act on: bad input file, bad option, missing data. The CLI prints its message as one line.</summary>
public class WeakSegException : Exception
{
    public WeakSegException(string message) : base(message) { }
    public WeakSegException(string message, Exception inner) : base(message, inner) { }

    /// <summary>An error about one file: the message starts with the path.</summary>
    public static WeakSegException ForFile(string path, string problem) => new($"{path}: {problem}");
}
