namespace WeakSeg.Data;

/// <summary>
/// Paths of a PASCAL VOC 2012-style dataset root:
/// <code>
/// root/
///   JPEGImages/NAME.jpg             (or train2014/ and val2014/ for the COCO layout, see CocoMaskBuilder)
///   SegmentationClass/NAME.png       palette-indexed masks (255 = ignore)
///   SegmentationClassAug/NAME.png    grayscale index masks (SBD-augmented set)
///   ImageSets/Segmentation/{train,train_aug,val}.txt
///   classes.txt                      optional: one class name per line, background first
///   labels.txt                       optional: image-level labels, "NAME c1 c2 ..." per line
/// </code>
/// </summary>
public sealed class VocLayout
{
    public string Root { get; }

    public VocLayout(string root)
    {
        if (string.IsNullOrWhiteSpace(root)) throw new WeakSegException("dataset root is empty");
        Root = Path.GetFullPath(root);
        if (File.Exists(Root)) throw WeakSegException.ForFile(Root, "dataset root is a file, expected a folder in VOC layout");
        if (!Directory.Exists(Root)) throw WeakSegException.ForFile(Root, "dataset root does not exist");
    }

    public string ImagesDir => Path.Combine(Root, "JPEGImages");
    public string MasksDir => Path.Combine(Root, "SegmentationClass");
    public string AugMasksDir => Path.Combine(Root, "SegmentationClassAug");
    public string SplitsDir => Path.Combine(Root, "ImageSets", "Segmentation");
    public string ClassesFile => Path.Combine(Root, "classes.txt");
    public string LabelsFile => Path.Combine(Root, "labels.txt");

    public string SplitFile(string split) => Path.Combine(SplitsDir, split + ".txt");
    /// <summary>Folders searched for NAME.jpg, in order: JPEGImages, then COCO's train2014, val2014, images/train2014, images/val2014.</summary>
    public IReadOnlyList<string> ImageDirs => [ImagesDir, Path.Combine(Root, "train2014"), Path.Combine(Root, "val2014"),
        Path.Combine(Root, "images", "train2014"), Path.Combine(Root, "images", "val2014")];

    /// <summary>The image of <paramref name="name"/>: the first existing NAME.jpg in <see cref="ImageDirs"/>, else JPEGImages/NAME.jpg.</summary>
    public string ImagePath(string name)
    {
        var primary = Path.Combine(ImagesDir, name + ".jpg");
        if (File.Exists(primary)) return primary;
        foreach (var dir in ImageDirs.Skip(1))
        {
            var p = Path.Combine(dir, name + ".jpg");
            if (File.Exists(p)) return p;
        }
        return primary;
    }

    /// <summary>The ground-truth mask of an image: SegmentationClass first, else SegmentationClassAug; null if neither exists.</summary>
    public string? MaskPath(string name)
    {
        var p = Path.Combine(MasksDir, name + ".png");
        if (File.Exists(p)) return p;
        var a = Path.Combine(AugMasksDir, name + ".png");
        return File.Exists(a) ? a : null;
    }

    /// <summary>
    /// Image names of a split list file: one name per line, or the two-path form <c>/JPEGImages/NAME.jpg /SegmentationClassAug/NAME.png</c>;
    /// blank lines skipped. Split lists and labels.txt separate fields by whitespace, so an image name cannot contain a space or a tab:
    /// a line with more fields is refused (naming the file, the line and its text) rather than read as a shorter name. Other characters,
    /// non-ASCII ones included, are fine. Errors name the file.
    /// </summary>
    public IReadOnlyList<string> ReadSplit(string split)
    {
        var file = SplitFile(split);
        if (!File.Exists(file))
        {
            var known = Directory.Exists(SplitsDir) ? string.Join(", ", Directory.GetFiles(SplitsDir, "*.txt").Select(Path.GetFileNameWithoutExtension).Order()) : "none";
            throw WeakSegException.ForFile(file, $"split '{split}' not found (available: {known})");
        }
        var names = new List<string>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(file))
        {
            lineNumber++;
            var trimmed = line.Trim();
            if (trimmed.Length == 0) continue;
            var fields = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var name = fields[0];
            bool pathForm = name.StartsWith('/');                                          // "/JPEGImages/x.jpg /Seg.../x.png" lists
            if (fields.Length > (pathForm ? 2 : 1))
                throw WeakSegException.ForFile(file, $"line {lineNumber}: '{trimmed}' has {fields.Length} whitespace-separated fields, expected " +
                    (pathForm ? "an image path and a mask path" : "one image name") +
                    "; image names cannot contain spaces or tabs (split lists and labels.txt separate fields by whitespace): rename the files");
            if (pathForm) name = Path.GetFileNameWithoutExtension(name);
            // A name is a file name inside the dataset's folders: '..' or a separator would read (and write maps) outside them.
            if (name.Contains('/') || name.Contains('\\') || name == "." || name == "..")
                throw WeakSegException.ForFile(file, $"line {lineNumber}: image name '{name}' contains a path separator or '..' (names are file names inside JPEGImages)");
            names.Add(name);
        }
        if (names.Count == 0) throw WeakSegException.ForFile(file, $"split '{split}' is empty");
        return names;
    }
}
