using WeakSeg.IO;

namespace WeakSeg.Data;

/// <summary>
/// Class names of a segmentation dataset: index 0 is background, 1..K the foreground classes (mask value = index; 255 = ignore).
/// VOC's 20 classes by default, or <c>root/classes.txt</c> (one name per line, background first).
/// </summary>
public sealed class ClassNames
{
    /// <summary>The PASCAL VOC 2012 class names, background first (devkit order).</summary>
    public static IReadOnlyList<string> VocNames { get; } =
    [
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ];

    /// <summary>Background plus at most 254 classes: indices 0..254 (255 is the ignore value).</summary>
    public const int MaxNames = 255;

    readonly string[] _names;
    readonly Dictionary<string, int> _lookup;

    /// <summary>Background + K names. Throws on duplicates, fewer than 2 or more than 255 names; <paramref name="source"/> names the origin in messages.</summary>
    public ClassNames(IEnumerable<string> names, string source = "class list")
    {
        _names = names.Select(n => n.Trim()).ToArray();
        if (_names.Length < 2) throw WeakSegException.ForFile(source, $"needs at least 2 class names (background first, then the classes), found {_names.Length}");
        if (_names.Length > MaxNames) throw WeakSegException.ForFile(source, $"has {_names.Length} class names; at most {MaxNames} are allowed (indices 0..254, 255 is the ignore value)");
        _lookup = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < _names.Length; i++)
        {
            if (_names[i].Length == 0) throw WeakSegException.ForFile(source, $"class {i} has an empty name");
            var key = Normalise(_names[i]);
            if (_lookup.TryGetValue(key, out int first))
                throw WeakSegException.ForFile(source, $"duplicate class name '{_names[i]}' (entries {first} and {i})");
            _lookup[key] = i;
        }
    }

    /// <summary>VOC 2012: background + 20 classes.</summary>
    public static ClassNames Voc { get; } = new(VocNames, "VOC class list");

    /// <summary>Reads a classes.txt: one name per line, background first; blank lines are skipped.</summary>
    public static ClassNames Load(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "class list not found");
        return new ClassNames(File.ReadLines(path).Where(l => l.Trim().Length > 0), path);
    }

    /// <summary><c>root/classes.txt</c> when present, else VOC's names.</summary>
    public static ClassNames ForRoot(string root)
    {
        var file = Path.Combine(root, "classes.txt");
        return File.Exists(file) ? Load(file) : Voc;
    }

    /// <summary>Writes one name per line, atomically.</summary>
    public void Save(string path)
    {
        AtomicFile.WriteAllLines(path, _names);
    }

    /// <summary>All names, background first (Count = K + 1).</summary>
    public IReadOnlyList<string> All => _names;
    public int Count => _names.Length;
    /// <summary>K: the number of foreground classes.</summary>
    public int NumClasses => _names.Length - 1;
    public string this[int index] => _names[index];

    /// <summary>Index of a class name (case-insensitive; '_' matches ' ' so "traffic_light" finds "traffic light"), or -1.</summary>
    public int IndexOf(string name) => _lookup.TryGetValue(Normalise(name), out int i) ? i : -1;

    static string Normalise(string name) => name.Trim().Replace('_', ' ');
}
