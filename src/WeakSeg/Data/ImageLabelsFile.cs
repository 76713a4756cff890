using WeakSeg.IO;

namespace WeakSeg.Data;

/// <summary>
/// <c>labels.txt</c>: image-level labels, one line per image, <c>NAME c1 c2 …</c> where each c is a class name from the
/// class list (case-insensitive, '_' for spaces) or a foreground index 1..K. Blank lines and lines starting with '#' are skipped.
/// An image with no foreground class is a line with the name only.
/// </summary>
public static class ImageLabelsFile
{
    /// <summary>Reads the file; bad lines are added to <paramref name="problems"/> (naming file, line and token) and skipped.</summary>
    public static Dictionary<string, int[]> Read(string path, ClassNames names, List<DatasetProblem> problems)
    {
        var result = new Dictionary<string, int[]>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var tokens = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var name = tokens[0];
            var classes = new SortedSet<int>();
            string? error = null;
            foreach (var t in tokens.Skip(1))
            {
                int c;
                if (int.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int idx))
                {
                    if (idx < 1 || idx > names.NumClasses) { error = $"line {lineNo}: class index {idx} is outside 1..{names.NumClasses}"; break; }
                    c = idx;
                }
                else
                {
                    c = names.IndexOf(t);
                    if (c < 0) { error = $"line {lineNo}: unknown class name '{t}' (not in the {names.Count}-entry class list)"; break; }
                    if (c == 0) { error = $"line {lineNo}: '{t}' is the background class, not an image-level label"; break; }
                }
                classes.Add(c);
            }
            if (error == null && result.ContainsKey(name)) error = $"line {lineNo}: image '{name}' appears a second time";
            if (error != null) { problems.Add(new DatasetProblem(path, error)); continue; }
            result[name] = classes.ToArray();
        }
        return result;
    }

    /// <summary>Reads the file and throws at the first bad line.</summary>
    public static Dictionary<string, int[]> Read(string path, ClassNames names)
    {
        var problems = new List<DatasetProblem>();
        var r = Read(path, names, problems);
        if (problems.Count > 0) throw problems[0].ToException();
        return r;
    }

    /// <summary>Writes <c>NAME i1 i2 …</c> lines (indices), sorted by name, atomically.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, int[]> labels)
    {
        AtomicFile.WriteAllLines(path, labels.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => kv.Value.Length == 0 ? kv.Key : kv.Key + " " + string.Join(' ', kv.Value)));
    }
}
