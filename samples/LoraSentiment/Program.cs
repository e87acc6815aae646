Console.WriteLine("LoraSentiment: not implemented yet.");
return 1;
